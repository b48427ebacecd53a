// BLVerify
