// One-off comparison of OpenBLAS and BLIS on blconvert's convolution GEMM shapes (bLVNet-TAM-50):
// two threads, each running single-threaded SGEMMs as the convolution tiles do. Prints GFLOP/s
// (wall, and per CPU-second, which is less sensitive to other load on a shared machine).
//
//   apt-get install libblis-dev
//   gcc -O2 tools/blas_gemm_compare.c -o /tmp/g_openblas -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -lpthread
//   gcc -O2 tools/blas_gemm_compare.c -o /tmp/g_blis -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//       -L/usr/lib/x86_64-linux-gnu/blis-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -lpthread
//   OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell /tmp/g_openblas      (or SKYLAKEX)
//   BLIS_NUM_THREADS=1 OMP_NUM_THREADS=1 BLIS_ARCH_TYPE=haswell /tmp/g_blis  (or skx; unset: BLIS 0.9 picks
//                                                                           its generic kernels on Zen 5)
// The whole engine can run on BLIS without rebuilding (cblas_sgemm interposed):
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4 BLIS_ARCH_TYPE=haswell BLIS_NUM_THREADS=1 \
//       OMP_NUM_THREADS=1 .build/release/blconvert bench r50.blc
// One-off: single-threaded SGEMMs of blconvert's conv shapes, run by 2 pthreads (as conv tiles do).
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>
#include <cblas.h>
typedef struct { int m, k, n, reps; float *a, *b, *c; } job;
static double now(){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
static void* work(void* p){ job* j=p; for(int r=0;r<j->reps;r++) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,j->m,j->n,j->k,1.f,j->a,j->k,j->b,j->n,0.f,j->c,j->n); return 0;}
int main(){
  int shapes[][3]={{64,147,3136},{32,576,1568},{64,256,3136},{64,576,3136},{256,64,3136},{128,1152,784},{128,512,784},{512,128,784},{256,2304,196},{1024,256,196},{256,1024,196},{512,4608,196},{2048,512,196},{512,2048,196}};
  int ns=sizeof(shapes)/sizeof(shapes[0]);
  double total=0, tflop=0, ctotal=0;
  for(int s=0;s<ns;s++){
    int m=shapes[s][0],k=shapes[s][1],n=shapes[s][2];
    double fl=2.0*m*k*n; int reps=(int)(4e9/fl)+1;
    job j[2]; pthread_t t[2];
    for(int i=0;i<2;i++){ j[i]=(job){m,k,n,reps,malloc(4L*m*k),malloc(4L*k*n),malloc(4L*m*n)};
      for(long q=0;q<(long)m*k;q++) j[i].a[q]=(q%7)*0.1f; for(long q=0;q<(long)k*n;q++) j[i].b[q]=(q%5)*0.1f; }
    work(&j[0]); // warm
    double best=1e9, cbest=1e9;
    for(int rep=0;rep<3;rep++){
      double t0=now(); double c0=(double)clock()/CLOCKS_PER_SEC;
      for(int i=0;i<2;i++) pthread_create(&t[i],0,work,&j[i]);
      for(int i=0;i<2;i++) pthread_join(t[i],0);
      double dt=(now()-t0)/reps; if(dt<best) best=dt; double cdt=((double)clock()/CLOCKS_PER_SEC-c0)/reps; if(cdt<cbest) cbest=cdt;
    }
    printf("M %5d K %5d N %5d: %7.1f GFLOP/s wall, %7.1f GFLOP per CPU-second\n",m,k,n,2*fl/best/1e9,2*fl/cbest/1e9);
    total+=best; ctotal+=cbest; tflop+=2*fl;
    for(int i=0;i<2;i++){free(j[i].a);free(j[i].b);free(j[i].c);}
  }
  printf("all shapes: %.1f GFLOP/s wall, %.1f GFLOP per CPU-second (x2 cores = %.1f)\n", tflop/total/1e9, tflop/ctotal/1e9, 2*tflop/ctotal/1e9);
}
