// core: the differences between the LibTorch versions this project builds
// against (Debian's 1.13 CPU build and 2.x CUDA builds from PyPI's torch
// wheels or a LibTorch archive), in one place. Include after LibTorch headers.
#pragma once

#include <torch/version.h>

/// LibTorch 2.3 made c10::Allocator::allocate non-const and added the pure
/// virtual copy_data; EDMIPS_ALLOCATE_CONST is `const` before that.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define EDMIPS_ALLOCATE_CONST
#define EDMIPS_ALLOCATOR_NEEDS_COPY_DATA 1
#else
#define EDMIPS_ALLOCATE_CONST const
#define EDMIPS_ALLOCATOR_NEEDS_COPY_DATA 0
#endif
