// Kernels of github.com/org/vat/cuda, compiled when a process opens the GPU,
// by NVRTC for the device's own compute capability (nvrtc.go), and cached.
// Every __global__ function here is in KernelNames (kernelnames.go) and the
// reverse: TestKernelNamesMatchSource checks it in every build.
//
// Layouts match the CPU ops of the root package: NCHW activations, row-major
// matrices, float32.

extern "C" {

// im2col lays out the KHxKW receptive fields of a batch of CxHxW images:
// col[n][(c*KH+p)*KW+q][i*OW+j] = x[n][c][i+p][j+q] ("valid", stride 1).
__global__ void im2col(const float* __restrict__ x, float* __restrict__ col,
                       int N, int C, int H, int W, int KH, int KW) {
    int OH = H - KH + 1, OW = W - KW + 1, P = OH * OW, K = C * KH * KW;
    long total = (long)N * K * P;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
        int pix = t % P;
        long rest = t / P;
        int r = rest % K;
        int n = rest / K;
        int q = r % KW, p = (r / KW) % KH, c = r / (KW * KH);
        int i = pix / OW, j = pix % OW;
        col[t] = x[(((long)n * C + c) * H + i + p) * W + j + q];
    }
}

// col2im is the adjoint of im2col: every pixel gathers the entries of col
// that were copied from it (no atomics, so the sum order is fixed).
__global__ void col2im(const float* __restrict__ col, float* __restrict__ x,
                       int N, int C, int H, int W, int KH, int KW) {
    int OH = H - KH + 1, OW = W - KW + 1, P = OH * OW, K = C * KH * KW;
    long total = (long)N * C * H * W;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
        int w = t % W;
        int h = (t / W) % H;
        int c = (t / ((long)W * H)) % C;
        long n = t / ((long)W * H * C);
        float s = 0;
        for (int p = 0; p < KH; p++) {
            int i = h - p;
            if (i < 0 || i >= OH) continue;
            for (int q = 0; q < KW; q++) {
                int j = w - q;
                if (j < 0 || j >= OW) continue;
                s += col[(n * K + (c * KH + p) * KW + q) * P + i * OW + j];
            }
        }
        x[t] = s;
    }
}

// bias_act adds b[f] to y[n][f][*] (P entries per feature) and applies a
// ReLU when relu != 0.
__global__ void bias_act(float* __restrict__ y, const float* __restrict__ b, int N, int F, int P, int relu) {
    long total = (long)N * F * P;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
        int f = (t / P) % F;
        float v = y[t] + b[f];
        y[t] = (relu && v < 0.f) ? 0.f : v;
    }
}

// relu_mask: out = g where y > 0, else 0.
__global__ void relu_mask(float* __restrict__ out, const float* __restrict__ y, const float* __restrict__ g, long n) {
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x)
        out[t] = y[t] > 0.f ? g[t] : 0.f;
}

// maxpool2: 2x2 max-pooling with stride 2 over NC planes of HxW.
__global__ void maxpool2(const float* __restrict__ x, float* __restrict__ y, int NC, int H, int W) {
    int OH = H / 2, OW = W / 2;
    long total = (long)NC * OH * OW;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
        int j = t % OW, i = (t / OW) % OH;
        long pl = t / ((long)OW * OH);
        const float* r0 = x + (pl * H + 2 * i) * W + 2 * j;
        const float* r1 = r0 + W;
        y[t] = fmaxf(fmaxf(r0[0], r0[1]), fmaxf(r1[0], r1[1]));
    }
}

// maxpool2_grad routes dy to the first input of each window (row-major
// order) that equals the window's maximum, as the CPU op does.
__global__ void maxpool2_grad(const float* __restrict__ x, const float* __restrict__ y,
                              const float* __restrict__ gy, float* __restrict__ gx, int NC, int H, int W) {
    int OH = H / 2, OW = W / 2;
    long total = (long)NC * H * W;
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < total; t += (long)gridDim.x * blockDim.x) {
        int w = t % W, h = (t / W) % H;
        long pl = t / ((long)W * H);
        int i = h / 2, j = w / 2;
        float g = 0.f;
        if (i < OH && j < OW) {
            long o = (pl * OH + i) * OW + j;
            const float* r0 = x + (pl * H + 2 * i) * W + 2 * j;
            const float* r1 = r0 + W;
            float m = y[o];
            int k = r0[0] == m ? 0 : r0[1] == m ? 1 : r1[0] == m ? 2 : 3;
            int mine = (h - 2 * i) * 2 + (w - 2 * j);
            if (k == mine) g = gy[o];
        }
        gx[t] = g;
    }
}

// bias_grad sums g[n][f][*] over n and the P positions: one block per f,
// a fixed-order tree reduction in shared memory (blockDim.x = 256).
__global__ void bias_grad(const float* __restrict__ g, float* __restrict__ gb, int N, int F, int P) {
    __shared__ float part[256];
    int f = blockIdx.x;
    float s = 0.f;
    for (long t = threadIdx.x; t < (long)N * P; t += blockDim.x) {
        long n = t / P;
        int p = t % P;
        s += g[(n * F + f) * P + p];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) gb[f] = part[0];
}

// axpby: z = a*x + b*y elementwise (add: a = b = 1; dropout: y is the mask, a = 0 unused).
__global__ void axpby(float* __restrict__ z, float a, const float* __restrict__ x, float b, const float* __restrict__ y, long n) {
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x)
        z[t] = a * x[t] + b * y[t];
}

// mul: z = x * y elementwise (dropout's mask).
__global__ void mul(float* __restrict__ z, const float* __restrict__ x, const float* __restrict__ y, long n) {
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x)
        z[t] = x[t] * y[t];
}

// adadelta: Keras' Adadelta update of n parameters.
__global__ void adadelta(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ a,
                         float* __restrict__ u, long n, float rho, float eps, float lr) {
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x) {
        float gt = g[t];
        float at = rho * a[t] + (1.f - rho) * gt * gt;
        float d = gt * sqrtf(u[t] + eps) / sqrtf(at + eps);
        w[t] -= lr * d;
        u[t] = rho * u[t] + (1.f - rho) * d * d;
        a[t] = at;
    }
}

// adam: the root package's Adam update of n parameters (adam.go), each
// operation rounded on its own (the _rn intrinsics forbid fused
// multiply-adds) so that the result is the CPU's bit for bit.
__global__ void adam(float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                     float* __restrict__ v, long n, float b1, float b2, float step, float eps) {
    for (long t = blockIdx.x * (long)blockDim.x + threadIdx.x; t < n; t += (long)gridDim.x * blockDim.x) {
        float gt = g[t];
        float mt = __fadd_rn(__fmul_rn(b1, m[t]), __fmul_rn(1.f - b1, gt));
        float vt = __fadd_rn(__fmul_rn(b2, v[t]), __fmul_rn(__fmul_rn(1.f - b2, gt), gt));
        w[t] = __fsub_rn(w[t], __fdiv_rn(__fmul_rn(step, mt), __fadd_rn(__fsqrt_rn(vt), eps)));
        m[t] = mt;
        v[t] = vt;
    }
}

// block_sum2 reduces two per-thread double sums over a block of 256
// threads in a fixed tree order; every thread gets both totals.
__device__ void block_sum2(double* a, double* b) {
    __shared__ double pa[256], pb[256];
    pa[threadIdx.x] = *a;
    pb[threadIdx.x] = *b;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if (threadIdx.x < w) {
            pa[threadIdx.x] += pa[threadIdx.x + w];
            pb[threadIdx.x] += pb[threadIdx.x + w];
        }
        __syncthreads();
    }
    *a = pa[0];
    *b = pb[0];
    __syncthreads();
}

// l2normalize scales each of N samples of M values to L2 norm scale (all-zero
// samples stay 0): one block of 256 threads per sample, sums in double as on
// the CPU.
__global__ void l2normalize(const float* __restrict__ x, float* __restrict__ y, int N, int M, float scale) {
    long i = blockIdx.x;
    const float* xi = x + i * M;
    double s = 0, unused = 0;
    for (int j = threadIdx.x; j < M; j += blockDim.x) s += (double)xi[j] * (double)xi[j];
    block_sum2(&s, &unused);
    double c = s > 0 ? (double)scale / sqrt(s) : 0;
    for (int j = threadIdx.x; j < M; j += blockDim.x) y[i * M + j] = (float)((double)xi[j] * c);
}

// l2normalize_grad: gx_i = scale * (g_i / |x_i| - x_i <x_i, g_i> / |x_i|^3).
__global__ void l2normalize_grad(const float* __restrict__ x, const float* __restrict__ g,
                                 float* __restrict__ gx, int N, int M, float scale) {
    long i = blockIdx.x;
    const float* xi = x + i * M;
    const float* gi = g + i * M;
    double s = 0, dot = 0;
    for (int j = threadIdx.x; j < M; j += blockDim.x) {
        s += (double)xi[j] * (double)xi[j];
        dot += (double)xi[j] * (double)gi[j];
    }
    block_sum2(&s, &dot);
    double a = 0, b = 0;
    if (s > 0) {
        double nrm = sqrt(s);
        a = (double)scale / nrm;
        b = (double)scale * dot / (nrm * nrm * nrm);
    }
    for (int j = threadIdx.x; j < M; j += blockDim.x) gx[i * M + j] = (float)(a * (double)gi[j] - b * (double)xi[j]);
}

// ---- Random numbers (internal/rng is their definition) ----

__device__ unsigned long long splitmix64(unsigned long long x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// A 128-bit PCG state (Go's math/rand/v2 PCG: hi, lo) and its arithmetic
// mod 2^128.
struct u128 { unsigned long long hi, lo; };

__device__ u128 mul128(u128 a, u128 b) {
    u128 r;
    r.lo = a.lo * b.lo;
    r.hi = __umul64hi(a.lo, b.lo) + a.hi * b.lo + a.lo * b.hi;
    return r;
}

__device__ u128 add128(u128 a, u128 b) {
    u128 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo ? 1ULL : 0ULL);
    return r;
}

// PCG's LCG step s <- PCG_MUL*s + PCG_INC (math/rand/v2 pcg.go).
__device__ u128 pcg_mul() { u128 m = {2549297995355413924ULL, 4865540595714422341ULL}; return m; }
__device__ u128 pcg_inc() { u128 c = {6364136223846793005ULL, 1442695040888963407ULL}; return c; }

// pcg_skip returns the state d steps after s, by composing the affine step
// with itself along d's bits (Brown, "Random number generation with
// arbitrary strides", 1994).
__device__ u128 pcg_skip(u128 s, unsigned long long d) {
    u128 am = {0, 1}, ac = {0, 0};  // the composed step so far: x -> am*x + ac
    u128 m = pcg_mul(), c = pcg_inc();
    u128 one = {0, 1};
    while (d) {
        if (d & 1) {
            am = mul128(am, m);
            ac = add128(mul128(ac, m), c);
        }
        c = mul128(add128(m, one), c);
        m = mul128(m, m);
        d >>= 1;
    }
    return add128(mul128(am, s), ac);
}

// pcg_next steps s and returns the DXSM output of the new state (PCG.Uint64).
__device__ unsigned long long pcg_next(u128* s) {
    *s = add128(mul128(*s, pcg_mul()), pcg_inc());
    unsigned long long hi = s->hi;
    hi ^= hi >> 32;
    hi *= 0xda942042e4dd58b5ULL;
    hi ^= hi >> 48;
    hi *= (s->lo | 1);
    return hi;
}

#define RNG_CHUNK 4096      // values per stream: rng.ChunkLen
#define BERN_DRAWS 16       // 64-bit draws per thread
#define BERN_PIECES (RNG_CHUNK / 2 / BERN_DRAWS)

// bernoulli_pcg writes rng.BernoulliKey(m[0:n], key, t, v) bit for bit:
// chunk c of RNG_CHUNK values draws from the PCG seeded (key,
// splitmix64(c)); each 64-bit draw sets two entries, v where its low (then
// high) half is below t, else +0. A thread takes BERN_DRAWS consecutive
// draws of one chunk, skipping ahead to its first.
__global__ void bernoulli_pcg(float* __restrict__ m, long n, unsigned long long key, unsigned long long t, float v) {
    long pieces = (n + RNG_CHUNK - 1) / RNG_CHUNK * BERN_PIECES;
    for (long p = blockIdx.x * (long)blockDim.x + threadIdx.x; p < pieces; p += (long)gridDim.x * blockDim.x) {
        long c = p / BERN_PIECES;
        int d0 = (int)(p % BERN_PIECES) * BERN_DRAWS;
        long i = c * RNG_CHUNK + 2L * d0;
        if (i >= n) continue;
        u128 s = {key, splitmix64((unsigned long long)c)};
        s = pcg_skip(s, (unsigned long long)d0);
        for (int q = 0; q < BERN_DRAWS && i < n; q++, i += 2) {
            unsigned long long u = pcg_next(&s);
            m[i] = (u & 0xffffffffULL) < t ? v : 0.f;
            if (i + 1 < n) m[i + 1] = (u >> 32) < t ? v : 0.f;
        }
    }
}

// philox4x32_10 replaces c by Philox4x32-10 of c under key (k0, k1)
// (rng.Philox4x32).
__device__ void philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        unsigned int c0 = c[0], c2 = c[2];
        unsigned int h0 = __umulhi(0xD2511F53u, c0), l0 = 0xD2511F53u * c0;
        unsigned int h1 = __umulhi(0xCD9E8D57u, c2), l1 = 0xCD9E8D57u * c2;
        c[0] = h1 ^ c[1] ^ k0;
        c[1] = l1;
        c[2] = h0 ^ c[3] ^ k1;
        c[3] = l0;
    }
}

// normals_philox writes rng.PhiloxNormals(x[0:n], key): block b of four
// values is two Box-Muller transforms, in double, of Philox4x32-10 of
// counter (b, b >> 32, 0, 0).
__global__ void normals_philox(float* __restrict__ x, long n, unsigned long long key) {
    long blocks = (n + 3) / 4;
    for (long b = blockIdx.x * (long)blockDim.x + threadIdx.x; b < blocks; b += (long)gridDim.x * blockDim.x) {
        unsigned int w[4] = {(unsigned int)b, (unsigned int)((unsigned long long)b >> 32), 0u, 0u};
        philox4x32_10(w, (unsigned int)key, (unsigned int)(key >> 32));
        for (int p = 0; p < 2; p++) {
            double u1 = ((double)w[2 * p] + 0.5) * 2.3283064365386963e-10;  // 2^-32
            double u2 = ((double)w[2 * p + 1] + 0.5) * 2.3283064365386963e-10;
            double r = sqrt(-2.0 * log(u1)), sn, cs;
            sincos(2.0 * 3.141592653589793 * u2, &sn, &cs);
            long i = 4 * b + 2 * p;
            if (i < n) x[i] = (float)(r * cs);
            if (i + 1 < n) x[i + 1] = (float)(r * sn);
        }
    }
}

// ---- Softmax losses, one thread per row, in double as the CPU ops ----
// (internal/ops: crossentropy.go, kl.go, entropy.go). kind 0: cross-entropy
// of logits a against targets b; 1: KL(softmax(a) || softmax(b)); 2: the
// entropy of softmax(a) (b unused).

// log_sum_exp returns m + log(sum_j exp(z_j - m)), m = max_j z_j: the
// normalizer of log softmax, as ops.LogSoftmax computes it (K >= 1).
__device__ double log_sum_exp(const float* z, int K) {
    double m = (double)z[0], s = 0;
    for (int j = 1; j < K; j++) m = fmax(m, (double)z[j]);
    for (int j = 0; j < K; j++) s += exp((double)z[j] - m);
    return m + log(s);
}

// row_loss returns row i's loss and sets *sy to the sum of its targets
// (cross-entropy) and the normalizers *la, *lb of its logits.
__device__ double row_loss(int kind, const float* a, const float* b, int K, double* la, double* lb, double* sy) {
    double l = 0;
    *sy = 0;
    if (K == 0) return 0;
    *la = log_sum_exp(a, K);
    if (kind == 0) {
        for (int j = 0; j < K; j++) {
            *sy += (double)b[j];
            if (b[j] != 0.f) l -= (double)b[j] * ((double)a[j] - *la);
        }
    } else if (kind == 1) {
        *lb = log_sum_exp(b, K);
        for (int j = 0; j < K; j++) {
            double lp = (double)a[j] - *la, lq = (double)b[j] - *lb;
            l += exp(lp) * (lp - lq);
        }
    } else {
        for (int j = 0; j < K; j++) {
            double lp = (double)a[j] - *la;
            l -= exp(lp) * lp;
        }
    }
    return l;
}

// loss_rows writes each row's loss into loss[0:N].
__global__ void loss_rows(int kind, const float* __restrict__ a, const float* __restrict__ b,
                          float* __restrict__ loss, int N, int K) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < N; i += (long)gridDim.x * blockDim.x) {
        double la, lb, sy;
        loss[i] = (float)row_loss(kind, a + i * K, b + i * K, K, &la, &lb, &sy);
    }
}

// loss_grad writes c times the gradient of each row's loss with respect to
// argument wrt (0: a, 1: b; KL only) into grad (N x K):
//   cross-entropy  c (p_j sum(y) - y_j)
//   KL, wrt a      c p_j (log p_j - log q_j - KL)      wrt b   c (q_j - p_j)
//   entropy        -c p_j (log p_j + H)
__global__ void loss_grad(int kind, int wrt, const float* __restrict__ a, const float* __restrict__ b,
                          float* __restrict__ grad, int N, int K, double c) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < N; i += (long)gridDim.x * blockDim.x) {
        const float* ai = a + i * K;
        const float* bi = b + i * K;
        float* gi = grad + i * K;
        double la, lb, sy;
        double l = row_loss(kind, ai, bi, K, &la, &lb, &sy);
        for (int j = 0; j < K; j++) {
            double lp = (double)ai[j] - la, p = exp(lp), g;
            if (kind == 0) {
                g = c * (p * sy - (double)bi[j]);
            } else if (kind == 1) {
                double lq = (double)bi[j] - lb;
                g = wrt == 0 ? c * p * (lp - lq - l) : c * (exp(lq) - p);
            } else {
                g = -c * p * (lp + l);
            }
            gi[j] = (float)g;
        }
    }
}

// ---- Batch normalization (internal/ops/batchnorm.go), one block of 256
// threads per channel, sums in double. x is N x C x P: channel ch of sample
// i holds x[(i*C + ch)*P + j], j < P (P = 1 for N x F inputs).

// bn_forward normalizes channel blockIdx.x: with train, by the batch's mean
// and biased variance (updating the running averages when update is set,
// the variance unbiased by M/(M-1)), else by the running averages. Writes
// xhat, y = gamma*xhat + beta and invstd = 1/sqrt(var + eps).
__global__ void bn_forward(const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
                           float* __restrict__ run_mean, float* __restrict__ run_var, float* __restrict__ xhat,
                           float* __restrict__ y, float* __restrict__ invstd, int N, int C, int P, int train, int update,
                           double eps, double momentum) {
    int ch = blockIdx.x;
    long M = (long)N * P;
    double mean = (double)run_mean[ch], var = (double)run_var[ch];
    if (train) {
        double s = 0, unused = 0;
        for (long t = threadIdx.x; t < M; t += blockDim.x) s += (double)x[((t / P) * C + ch) * P + t % P];
        block_sum2(&s, &unused);
        mean = s / (double)M;
        double s2 = 0;
        for (long t = threadIdx.x; t < M; t += blockDim.x) {
            double d = (double)x[((t / P) * C + ch) * P + t % P] - mean;
            s2 += d * d;
        }
        block_sum2(&s2, &unused);
        var = s2 / (double)M;
        if (update && threadIdx.x == 0) {
            double unbiased = M > 1 ? s2 / (double)(M - 1) : var;
            run_mean[ch] = (float)(momentum * (double)run_mean[ch] + (1 - momentum) * mean);
            run_var[ch] = (float)(momentum * (double)run_var[ch] + (1 - momentum) * unbiased);
        }
    }
    double inv = 1 / sqrt(var + eps), g = (double)gamma[ch], b = (double)beta[ch];
    if (threadIdx.x == 0) invstd[ch] = (float)inv;
    for (long t = threadIdx.x; t < M; t += blockDim.x) {
        long k = ((t / P) * C + ch) * P + t % P;
        double xh = ((double)x[k] - mean) * inv;
        xhat[k] = (float)xh;
        y[k] = (float)(g * xh + b);
    }
}

// bn_backward computes one gradient of bn_forward for channel blockIdx.x
// from the incoming gradient g and the forward's xhat and invstd: wrt 0
// the input's, gx = gamma*invstd/M * (M*g - sum g - xhat * sum g*xhat) in
// training, gamma*invstd*g with fixed statistics; wrt 1 gamma's, out[ch] =
// sum g*xhat; wrt 2 beta's, out[ch] = sum g.
__global__ void bn_backward(int wrt, const float* __restrict__ g, const float* __restrict__ xhat,
                            const float* __restrict__ gamma, const float* __restrict__ invstd, float* __restrict__ out,
                            int N, int C, int P, int train) {
    int ch = blockIdx.x;
    long M = (long)N * P;
    double sg = 0, sgx = 0;
    if (wrt > 0 || train) {
        for (long t = threadIdx.x; t < M; t += blockDim.x) {
            long k = ((t / P) * C + ch) * P + t % P;
            sg += (double)g[k];
            sgx += (double)g[k] * (double)xhat[k];
        }
        block_sum2(&sg, &sgx);
    }
    if (wrt > 0) {
        if (threadIdx.x == 0) out[ch] = (float)(wrt == 1 ? sgx : sg);
        return;
    }
    double k0 = (double)gamma[ch] * (double)invstd[ch];
    for (long t = threadIdx.x; t < M; t += blockDim.x) {
        long k = ((t / P) * C + ch) * P + t % P;
        out[k] = train ? (float)(k0 / (double)M * ((double)M * (double)g[k] - sg - (double)xhat[k] * sgx))
                       : (float)(k0 * (double)g[k]);
    }
}

}  // extern "C"
