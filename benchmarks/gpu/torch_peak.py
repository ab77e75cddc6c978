"""torch's own bf16 matmul peak on this GPU (8192^3, warmed up, best of 10 x 10), to set beside `chainlora bench`'s probe."""
import time

import torch

a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
start = time.time()
while time.time() - start < 2:
    a @ b
torch.cuda.synchronize()
best = 0.0
for _ in range(10):
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    best = max(best, 2 * 8192**3 * 10 / (time.perf_counter() - t) / 1e12)
print(f"torch bf16 matmul peak: {best:.0f} TFLOP/s")
