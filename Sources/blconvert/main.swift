import BLCommands
import BLHDF5

// HDF5 files are read by a copy of this executable, started with a hidden argument; in that
// role it answers and exits here.
HDF5Reader.serveIsolatedReadIfRequested()
BLConvert.main()
