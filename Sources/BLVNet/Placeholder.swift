// BLVNet
