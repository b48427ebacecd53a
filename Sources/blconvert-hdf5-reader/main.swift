import BLHDF5Library

// Started by blconvert (and any program using the BLConvert library) to read one HDF5 file with
// libhdf5 in a process of its own; see HDF5Isolation.
HDF5Server.main()
