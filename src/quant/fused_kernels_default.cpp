// The fused kernels for any x86-64 CPU.
#define EDMIPS_KERNEL_NAMESPACE generic
#include "quant/fused_kernels.inc"
