// BLEngine
