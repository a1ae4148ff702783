#!/usr/bin/env bash
# The original README.md calls the offline script run_offline.sh; it shipped as svhn_offline.sh.
exec bash "$(dirname "$0")/svhn_offline.sh" "$@"
