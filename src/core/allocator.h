// core: process-wide memory allocator settings for training workloads.
#pragma once

namespace edmips {

/// Keeps freed tensor memory in the process instead of returning it to the
/// OS after every step (glibc's default trims and unmaps large blocks, which
/// costs a page fault per 4 KiB on the next step: measured 2.3x slower search
/// steps). Leaves any MALLOC_*_ environment setting the user made alone.
void tune_memory_allocator();

}  // namespace edmips
