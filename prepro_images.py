"""Your own images as shards: python prepro_images.py --input_dir=DIR --output_dir=OUT [--image_size=32] ...

DIR holds one sub-folder per class (labeled: train/dev/test shards) or only images (unlabeled: OUT/unlabeled/extra
shards). Then train with --task_name=OUT/task_info.json --label_data_dir=OUT.
"""

from noisy_student_tf import cli

if __name__ == "__main__":
    cli.prepro_images()
