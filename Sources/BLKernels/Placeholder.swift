// BLKernels
