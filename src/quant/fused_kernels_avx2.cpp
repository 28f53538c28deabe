// The fused kernels for CPUs with AVX2 and FMA (compiled with -mavx2 -mfma).
#define EDMIPS_KERNEL_NAMESPACE avx2
#include "quant/fused_kernels.inc"
