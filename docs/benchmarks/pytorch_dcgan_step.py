"""PyTorch reference of the project's DCGAN training step, for docs/performance.md.

Same networks as gluoncv_gan's dcgan_lfw at 64x64 (nz 100, ngf 64, ndf 64, no conv bias,
BatchNorm, ReLU / LeakyReLU(0.2), tanh), BCE on logits, Adam(2e-4, 0.5), and the project's step:
G runs once; D on the real batch and on the detached fake batch, D steps; then G's loss through
D, G steps. Batches are random tensors in [-1, 1] (data loading is not part of the comparison).

    python docs/benchmarks/pytorch_dcgan_step.py --mode bf16 --threads 2 --iters 4 --repeats 5

Run it in an environment of its own with PyTorch (pip install torch), beside the project's.

Prints one JSON line: mode, threads, samples_per_s (median of the repeats), times.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def generator(nz=100, ngf=64):
    layers, width = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
                     nn.BatchNorm2d(ngf * 8), nn.ReLU(True)], ngf * 8
    for _ in range(3):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width //= 2
    layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator(ndf=64):
    layers, width = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], ndf
    for _ in range(3):
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2),
                   nn.LeakyReLU(0.2, True)]
        width *= 2
    layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mode', choices=['fp32', 'bf16'], default='bf16',
                        help='bf16: autocast(cpu, bfloat16) + channels_last; fp32: neither')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--iters', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net_g, net_d = generator(), discriminator()
    for net in (net_g, net_d):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
    fmt = torch.channels_last if args.mode == 'bf16' else torch.contiguous_format
    net_g, net_d = net_g.to(memory_format=fmt), net_d.to(memory_format=fmt)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = nn.BCEWithLogitsLoss()
    n = args.batch_size
    real = (torch.rand(n, 3, 64, 64) * 2 - 1).contiguous(memory_format=fmt)
    ones, zeros = torch.ones(n), torch.zeros(n)

    def step():
        z = torch.randn(n, 100, 1, 1).contiguous(memory_format=fmt)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.mode == 'bf16'):
            fake = net_g(z)
            d_loss = loss(net_d(real).reshape(-1).float(), ones) + \
                loss(net_d(fake.detach()).reshape(-1).float(), zeros)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.mode == 'bf16'):
            g_loss = loss(net_d(fake).reshape(-1).float(), ones)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for _ in range(args.iters):
            losses = step()
        times.append(time.perf_counter() - started)
    print(json.dumps({'mode': args.mode, 'threads': torch.get_num_threads(),
                      'torch': torch.__version__, 'batch_size': n,
                      'samples_per_s': n * args.iters / statistics.median(times),
                      'times': times, 'last_losses': losses}))


if __name__ == '__main__':
    main()
