// BLTorch
