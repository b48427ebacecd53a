import BLCore

/// A tensor storage named by a persistent id: `('storage', torch.FloatStorage, key, location, numel[, view])`.
/// The pickle only names it; the container (zip member, legacy storage area) supplies the bytes.
package struct StorageRef: Sendable, Equatable {
    /// `torch.FloatStorage`, `torch.cuda.HalfStorage`, `torch.UntypedStorage`, ...
    package let typeName: String
    package let dtype: DType
    /// `data/<key>` in zip files, the storage key in legacy files.
    package let key: String
    /// `cpu`, `cuda:0`, ... (recorded, not used).
    package let location: String
    /// Elements of `dtype` in the storage (bytes for untyped storages).
    package let numel: Int
    /// Legacy storage views: (view key, offset in elements into the root storage, elements).
    package let viewKey: String?
    package let viewOffset: Int
    package let viewCount: Int

    package var byteCount: Int { numel * dtype.byteSize }
}

/// Element sizes in bytes of a view over a root storage, checked against overflow.
extension StorageRef {
    package var viewByteRange: Range<Int>? {
        guard viewKey != nil else { return nil }
        let es = dtype.byteSize
        let (a, o1) = viewOffset.multipliedReportingOverflow(by: es)
        let (len, o2) = viewCount.multipliedReportingOverflow(by: es)
        let (b, o3) = a.addingReportingOverflow(len)
        if o1 || o2 || o3 { return nil }
        return a..<b
    }
}
