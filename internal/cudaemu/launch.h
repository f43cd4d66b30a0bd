// launch.h: the emulated launches of cuda/kernels.cu's kernels, callable
// from C (cgo). Each runs its kernel as a grid of grid blocks of 256
// threads, the launch geometry of package cuda.
#ifndef VAT_CUDAEMU_LAUNCH_H
#define VAT_CUDAEMU_LAUNCH_H
#ifdef __cplusplus
extern "C" {
#endif

void emu_im2col(unsigned grid, const float* x, float* col, int n, int c, int h, int w, int kh, int kw);
void emu_col2im(unsigned grid, const float* col, float* x, int n, int c, int h, int w, int kh, int kw);
void emu_bias_act(unsigned grid, float* y, const float* b, int n, int f, int p, int relu);
void emu_relu_mask(unsigned grid, float* out, const float* y, const float* g, long n);
void emu_maxpool2(unsigned grid, const float* x, float* y, int nc, int h, int w);
void emu_maxpool2_grad(unsigned grid, const float* x, const float* y, const float* gy, float* gx, int nc, int h, int w);
void emu_axpby(unsigned grid, float* z, float a, const float* x, float b, const float* y, long n);
void emu_mul(unsigned grid, float* z, const float* x, const float* y, long n);
void emu_adadelta(unsigned grid, float* w, const float* g, float* a, float* u, long n, float rho, float eps, float lr);
void emu_adam(unsigned grid, float* w, const float* g, float* m, float* v, long n, float b1, float b2, float step, float eps);
void emu_l2normalize(unsigned grid, const float* x, float* y, int n, int m, float scale);
void emu_l2normalize_grad(unsigned grid, const float* x, const float* g, float* gx, int n, int m, float scale);
void emu_bernoulli_pcg(unsigned grid, float* m, long n, unsigned long long key, unsigned long long t, float v);
void emu_normals_philox(unsigned grid, float* x, long n, unsigned long long key);
void emu_bn_forward(unsigned grid, const float* x, const float* gamma, const float* beta, float* run_mean, float* run_var,
                    float* xhat, float* y, float* invstd, int n, int c, int p, int train, int update, double eps, double momentum);
void emu_bn_backward(unsigned grid, int wrt, const float* g, const float* xhat, const float* gamma, const float* invstd,
                     float* out, int n, int c, int p, int train);
void emu_loss_rows(unsigned grid, int kind, const float* a, const float* b, float* loss, int n, int k);
void emu_loss_grad(unsigned grid, int kind, int wrt, const float* a, const float* b, float* grad, int n, int k, double c);

#ifdef __cplusplus
}
#endif
#endif
