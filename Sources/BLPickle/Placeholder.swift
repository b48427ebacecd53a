// BLPickle
