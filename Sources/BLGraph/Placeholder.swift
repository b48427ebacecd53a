// BLGraph
