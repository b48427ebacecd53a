// BLCheckpoint
