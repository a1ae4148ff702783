"""The corruption names and default FGSM step sizes of --robustness, without TensorFlow: main.py's flags take
their defaults from here (defining flags, and so `--help`, must not import TF); robustness.py implements them."""

# The order of robustness.SEVERITIES (CIFAR-10-C's parameters), which tests/test_cli.py compares.
CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "contrast", "brightness",
               "jpeg_compression", "pixelate")
DEFAULT_EPSILONS = ("1", "2", "4", "8", "16")
