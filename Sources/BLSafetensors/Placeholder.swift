// BLSafetensors
