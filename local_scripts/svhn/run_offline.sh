#!/usr/bin/env bash
# The original README calls the offline script run_offline.sh; it shipped as svhn_offline.sh (spec §11.1 item 2).
exec bash "$(dirname "$0")/svhn_offline.sh" "$@"
