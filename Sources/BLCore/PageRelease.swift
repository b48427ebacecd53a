extension MappedFile {
    /// Drops this process's resident pages lying wholly inside `range` (byte offsets into the file),
    /// so that bytes read once stop counting toward its memory. Contents do not change: the mapping
    /// is private and read-only, so its pages are never modified, and a page touched again is read
    /// back from the file (the page cache). Partial pages at either end are kept. A hint only:
    /// failures are ignored.
    package func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty, range.lowerBound >= 0, range.upperBound <= count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = UInt(bitPattern: base + range.lowerBound)
        let end = UInt(bitPattern: base + range.upperBound)
        let first = (start + UInt(page) - 1) / UInt(page) * UInt(page)
        let last = end / UInt(page) * UInt(page)
        guard first < last, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(p, Int(last - first), MADV_DONTNEED)
    }

    /// Fills the page tables for the whole mapping now, reading the file in
    /// (`MADV_POPULATE_READ`; `MADV_WILLNEED` on kernels before 5.14): for a file about to be
    /// read through (prepared weights), which then takes no page fault per 64 KiB.
    package func populate() {
        guard let base = bytes.baseAddress, count > 0 else { return }
        let p = UnsafeMutableRawPointer(mutating: base)
        if madvise(p, count, 22 /* MADV_POPULATE_READ */) != 0 { _ = madvise(p, count, MADV_WILLNEED) }
    }
}

extension ByteStorage {
    /// When these bytes are a slice of a `MappedFile`, releases the pages wholly inside `range`
    /// (byte offsets into this storage; all of it by default) as `MappedFile.release` does; no effect
    /// on memory the storage owns. Reading the bytes afterwards stays valid.
    package func releasePages(_ range: Range<Int>? = nil) {
        guard let file = owner as? MappedFile, let base = bytes.baseAddress, let fileBase = file.bytes.baseAddress else { return }
        let r = range ?? 0..<count
        guard r.lowerBound >= 0, r.upperBound <= count, !r.isEmpty else { return }
        let offset = base - fileBase
        guard offset >= 0, offset + count <= file.count else { return }
        file.release((offset + r.lowerBound)..<(offset + r.upperBound))
    }
}
