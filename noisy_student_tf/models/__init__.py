"""EfficientNet models and the mapping to the original TF1 checkpoints."""

from noisy_student_tf.models.efficientnet import (  # noqa: F401
    MODEL_TABLE,
    ReplicaSeedGenerator,
    freeze_layers,
    build_model,
    default_image_size,
    describe_model,
    get_model_params,
    require_model_name,
)
from noisy_student_tf.models.inference import clean_logits, model_from_config, normalize  # noqa: F401
from noisy_student_tf.models.tf1_checkpoint import (  # noqa: F401
    LoadReport,
    load_tf1_checkpoint,
    save_tf1_checkpoint,
)
