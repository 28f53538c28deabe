#!/usr/bin/env python3
"""The data benchmark's anchor: torchvision's ImageFolder + DataLoader with the
standard ImageNet training transform (RandomResizedCrop, horizontal flip,
ToTensor, Normalize) on FOLDER/train. Prints one line:
"images_per_second <value>". Called by `edmips bench --data`.

Usage: torchvision_data_bench.py FOLDER IMAGES BATCH SIZE WORKERS
"""
import sys
import time

import torch
import torchvision
from torchvision import transforms


def main(argv):
    folder, images, batch, size, workers = argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5])
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    dataset = torchvision.datasets.ImageFolder(folder + "/train", transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    # One warm-up batch (worker start-up), then the measured images.
    iterator = iter(loader)
    next(iterator)
    seen, start = 0, time.perf_counter()
    while seen < images:
        try:
            x, _ = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        seen += x.shape[0]
    print(f"images_per_second {seen / (time.perf_counter() - start):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
