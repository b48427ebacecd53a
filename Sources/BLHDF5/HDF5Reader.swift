import BLCore

/// Everything an HDF5 file holds that blconvert can use.
package struct HDF5Contents: Sendable {
    /// Numeric datasets at any depth, named by their path with "/" turned into "."
    /// (`module/0/weight` -> `module.0.weight`; a flat dataset called `conv.w` stays `conv.w`),
    /// in libhdf5's visit order: depth-first, names ascending within each group.
    package var tensors: [(name: String, tensor: Tensor)]
    /// Datasets (and attributes) that are not tensors, with the reason: strings, compound types,
    /// references, unsigned 16/32/64-bit integers, data stored in external files, ...
    package var skipped: [(name: String, reason: String)]
    /// Attributes of the file, its groups and its datasets, named `attr.<path>.<attribute>` with the
    /// object's path dotted as for tensors; the root group's attributes are `attr.<attribute>`.
    /// Numbers become `.int` / `.float`, h5py booleans `.bool`, strings `.string`; arrays `.list`.
    package var attributes: [(name: String, value: Value)]

    package init(tensors: [(name: String, tensor: Tensor)] = [], skipped: [(name: String, reason: String)] = [],
                attributes: [(name: String, value: Value)] = []) {
        self.tensors = tensors
        self.skipped = skipped
        self.attributes = attributes
    }
}

/// Reads HDF5 files (as h5py writes them) through libhdf5: every numeric dataset becomes an
/// owned, contiguous, little-endian `Tensor`; chunking, gzip and shuffle are handled by libhdf5.
package enum HDF5Reader {
    /// The 8-byte HDF5 signature.
    package static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

    /// True when the signature is at byte 0 or at a user-block offset (512, 1024, 2048, ...)
    /// inside the given bytes.
    package static func looksLikeHDF5(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset + 8 <= bytes.count {
            if (0..<8).allSatisfy({ bytes[offset + $0] == signature[$0] }) { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    /// Largest logical size accepted for all datasets together relative to the file: deflate cannot
    /// expand more than about 1032:1, so anything larger comes from corrupt or hostile headers.
    package static func byteLimit(fileSize: Int) -> Int {
        ExpansionBudget.decompressedLimit(fileSize: fileSize)
    }

    /// Reads every dataset and attribute of the file at `path`.
    ///
    /// libhdf5 runs in a separate process, the `blconvert-hdf5-reader` executable (see
    /// `HDF5Isolation`): a file that crashes it or makes it loop gives a `BLError` here, after at
    /// most 30 s plus 1 s per MB of file. This process never links libhdf5.
    package static func read(path: String) throws -> HDF5Contents {
        try read(path: path, timeout: nil)
    }

    /// `read(path:)` with an explicit time limit in seconds (nil: the size-based default).
    static func read(path: String, timeout: Double?) throws -> HDF5Contents {
        do {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw BLError(.io, "cannot open: \(String(cString: strerror(errno)))")
            }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw BLError(.io, "not a regular file")
            }
            let limit = timeout ?? HDF5Isolation.defaultTimeout(fileSize: Int(st.st_size))
            return try HDF5Isolation.run(path: path, fileSize: Int(st.st_size), timeout: limit)
        } catch let e as BLError {
            throw e.inFile(path)
        }
    }
}
