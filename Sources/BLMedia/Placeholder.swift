// BLMedia
