/// How much a file may expand to when decompressed or materialised: the one rule every reader
/// applies to bytes it produces from a file (zip members, HDF5 datasets, strided views).
package enum ExpansionBudget {
    /// Largest total of decompressed bytes believed from a file of `fileSize` bytes: deflate
    /// cannot expand more than about 1032:1, so 1100 times the file plus 1 MiB (for tiny files)
    /// holds every honest file; anything beyond comes from corrupt or hostile headers.
    package static func decompressedLimit(fileSize: Int) -> Int {
        let (m, o) = max(fileSize, 0).multipliedReportingOverflow(by: 1100)
        return o ? Int.max : m + (1 << 20)
    }

    /// Largest total of bytes that views reading their storage's elements more than once
    /// (stride-0 `expand` views, overlapping strides) may take once written out contiguously
    /// (`extract`, `import`), for a file of `fileSize` bytes: 4 times the file plus 16 MiB. A view
    /// of a small storage can claim any size; an honest checkpoint holds few such views, and
    /// small ones (881 bytes must not become 1 GiB).
    package static func repeatedViewLimit(fileSize: Int) -> Int {
        let (m, o) = max(fileSize, 0).multipliedReportingOverflow(by: 4)
        return o ? Int.max : m + (16 << 20)
    }

    /// Checks the tensors `extract` or `import` is about to materialise: the views larger than
    /// their storage, added up in order, must stay within `repeatedViewLimit`; the error names the
    /// tensor that crosses it.
    package static func checkMaterialisable(_ tensors: [(path: String, tensor: Tensor)], fileSize: Int, file: String? = nil) throws {
        let limit = repeatedViewLimit(fileSize: fileSize)
        var total = 0
        for (path, t) in tensors where t.byteCount > t.storage.count {
            total = total.addingReportingOverflow(t.byteCount).partialValue
            if total > limit || total < 0 {
                throw BLError(.format, "tensor '\(path)' is a view of shape \(t.shape), strides \(t.strides) over a storage of \(t.storage.count) bytes: written out it would take \(t.byteCount) bytes, and such repeated-element views of this file would take more than \(limit) bytes (4 times the file plus 16 MiB); save it with .contiguous() or .clone() if it is meant", file: file)
            }
        }
    }
}
