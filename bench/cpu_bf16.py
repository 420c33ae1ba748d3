"""How fast this CPU multiplies bfloat16 matrices against float32 ones, one thread, in one process: the hardware
side of mixed precision (`--precision mixed_bfloat16`). Prints the median GFLOP/s of each and their ratio.

    python -m bench.cpu_bf16
"""

import statistics
import time

import torch


def gflops(dtype, n=1024, repeats=15):
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def main():
    torch.set_num_threads(1)
    found = {dtype: gflops(dtype) for dtype in (torch.float32, torch.bfloat16)}
    print(
        f"float32 {found[torch.float32]:.0f} GFLOP/s, bfloat16 {found[torch.bfloat16]:.0f} GFLOP/s, "
        f"ratio {found[torch.bfloat16] / found[torch.float32]:.2f} (one thread, 1024 x 1024, median of 15)"
    )


if __name__ == "__main__":
    main()
