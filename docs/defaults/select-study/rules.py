import json, sys, math, collections
def tail(k, n):
    if k <= 0: return 1.0
    if k > n: return 0.0
    return min(1.0, sum(math.comb(n, j) for j in range(k, n+1)) / 2**n)
def wilcoxon_p(d):
    # one-sided p for median(d) > 0 by the normal approximation of the signed-rank statistic
    d = [x for x in d if x != 0]
    n = len(d)
    if n == 0: return 1.0
    r = sorted(range(n), key=lambda i: abs(d[i]))
    ranks = [0]*n
    for pos, i in enumerate(r): ranks[i] = pos+1
    w = sum(ranks[i] for i in range(n) if d[i] > 0)
    mu = n*(n+1)/4; sd = math.sqrt(n*(n+1)*(2*n+1)/24)
    z = (w - mu - 0.5)/sd
    return 0.5*math.erfc(z/math.sqrt(2))
rows = collections.defaultdict(dict)
for f in sys.argv[1:]:
    for line in open(f):
        h = json.loads(line)
        rows[(h['task'], h['split'])][h['eps_scale']] = h
for (task, split), c in rows.items():
    a = c[0.05]
    out = []
    for s, h in sorted(c.items()):
        right = sum(h['right']); n = len(h['right'])
        ml = sum(h['loss'])/n
        if s == 0.05:
            out.append(f"{s}: {right}/{n} loss {ml:.3f}")
            continue
        w = sum(1 for x, y in zip(h['right'], a['right']) if x and not y)
        l = sum(1 for x, y in zip(h['right'], a['right']) if y and not x)
        pa = tail(w, w+l)
        lw = sum(1 for x, y in zip(h['loss'], a['loss']) if x < y)
        ll = sum(1 for x, y in zip(h['loss'], a['loss']) if x > y)
        pl = tail(lw, lw+ll)
        pw = wilcoxon_p([y-x for x, y in zip(h['loss'], a['loss'])])
        out.append(f"{s}: {right}/{n} loss {ml:.3f} mcnemar {w}-{l} p={pa:.3f} losssign {lw}-{ll} p={pl:.3f} wilcoxon p={pw:.3f}")
    print(f"{task} split {split}:\n   " + "\n   ".join(out))
