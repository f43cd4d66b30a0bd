"""Independent reference for examples/semisup: semi-supervised VAT on
MNIST with 100 labels in PyTorch, written from the official recipe
(MLP 784-1200-1200-10 with batch norm, labeled batch 100, unlabeled batch
250, Adam at 0.002 decaying linearly over the last third, batch-norm
statistics updated by the labeled clean pass only, finite-difference power
iteration). Its own balanced split (10 per class, numpy seed --seed).

    /usr/bin/python3 scripts/torch/semi_reference.py --iters 1500 --eps 5 --xi 1e-3

It shares no code with this package: a check that our numbers are what the
method gives, not what our code gives.
"""
import argparse, glob, gzip, os, struct, subprocess, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
def gomnist():
    cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
    found = sorted(glob.glob(os.path.join(cache, "github.com/petar/!go!m!n!i!s!t@*/data")))
    return found[-1] if found else ""
ap.add_argument("--data", default=None, help="folder of the MNIST IDX files (default: the GoMNIST module's copy)")
ap.add_argument("--iters", type=int, default=1000)
ap.add_argument("--eps", type=float, default=0.3)
ap.add_argument("--xi", type=float, default=1e-6)
ap.add_argument("--double", action="store_true")
ap.add_argument("--both", action="store_true", help="LDS on labeled batch too")
ap.add_argument("--novat", action="store_true")
ap.add_argument("--entmin", type=float, default=0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--eval", type=int, default=250)
ap.add_argument("--lr", type=float, default=0.002)
ap.add_argument("--decay", type=float, default=2/3)
a = ap.parse_args()
a.data = a.data or gomnist()
torch.set_num_threads(int(os.environ.get("THREADS", "2"))); torch.manual_seed(a.seed); rng = np.random.default_rng(a.seed)
dt = torch.float64 if a.double else torch.float32

def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    nd = magic & 0xff
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)
X = torch.tensor(idx(a.data + "/train-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0, dtype=dt)
Y = torch.tensor(idx(a.data + "/train-labels-idx1-ubyte.gz").astype(np.int64))
XT = torch.tensor(idx(a.data + "/t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0, dtype=dt)
YT = torch.tensor(idx(a.data + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
lab = np.concatenate([rng.choice(np.where(Y.numpy() == c)[0], 10, replace=False) for c in range(10)])
mask = np.ones(len(Y), bool); mask[lab] = False; pool = np.where(mask)[0]
XL, YL, XU = X[lab], Y[lab], X[pool]

def bn(n): return nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)
net = nn.Sequential(nn.Linear(784, 1200), bn(1200), nn.ReLU(), nn.Linear(1200, 1200), bn(1200), nn.ReLU(), nn.Linear(1200, 10)).to(dt)
bns = [m for m in net if isinstance(m, nn.BatchNorm1d)]
def fwd(x, update):
    for m in bns: m.momentum = 0.01 if update else 0.0
    return net(x)
opt = torch.optim.Adam(net.parameters(), lr=a.lr)
def kl(p_logit, q_logit):
    p = F.softmax(p_logit, 1)
    return (p * (F.log_softmax(p_logit, 1) - F.log_softmax(q_logit, 1))).sum(1).mean()
def l2n(d): return d / (d.flatten(1).norm(dim=1, keepdim=True) + 1e-12)
perm = rng.permutation(len(pool)); pos = 0
t0 = time.time()
for it in range(1, a.iters + 1):
    if it > a.decay * a.iters:
        for g in opt.param_groups:
            g["lr"] = a.lr * (a.iters - it) / (a.iters * (1 - a.decay)); g["betas"] = (0.5, 0.999)
    if pos + 250 > len(perm): perm = rng.permutation(len(pool)); pos = 0
    xu = XU[perm[pos:pos + 250]]; pos += 250
    net.train()
    logit_l = fwd(XL, True)
    loss = F.cross_entropy(logit_l, YL); lds = torch.tensor(0.)
    if not a.novat:
        xv = torch.cat([XL, xu]) if a.both else xu
        with torch.no_grad():
            logit_c = fwd(xv, False)
        d = l2n(torch.randn_like(xv))
        d.requires_grad_(True)
        dist = kl(logit_c, fwd(xv + a.xi * d, False))
        g, = torch.autograd.grad(dist, d)
        r = a.eps * l2n(g.detach())
        lds = kl(logit_c, fwd(xv + r, False))
        loss = loss + lds
        if a.entmin:
            lu = fwd(xu, False); p = F.softmax(lu, 1)
            loss = loss + a.entmin * -(p * F.log_softmax(lu, 1)).sum(1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if it % a.eval == 0:
        net.eval()
        with torch.no_grad():
            err = (net(XT).argmax(1) != YT).float().mean().item()
        print(f"it {it} ce {F.cross_entropy(logit_l, YL).item():.4f} lds {lds.item():.5f} test error {100*err:.2f}% ({time.time()-t0:.0f}s)", flush=True)
