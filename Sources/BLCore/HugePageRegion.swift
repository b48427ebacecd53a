/// Zero-filled anonymous memory of its own mapping, unmapped when the region goes away. A region
/// of at least 2 MiB starts on a 2 MiB boundary and asks for transparent huge pages
/// (`MADV_HUGEPAGE`): kernels whose THP mode is `madvise` give 4 KiB pages otherwise, and a large
/// buffer written through then takes one page fault per 4 KiB instead of per 2 MiB.
package final class HugePageRegion: @unchecked Sendable {
    /// 2 MiB: the size from which a region asks for huge pages.
    package static let hugePage = 2 << 20
    /// The first byte; 2 MiB aligned when `count >= 2 MiB`, page aligned otherwise.
    package let base: UnsafeMutableRawPointer
    /// Usable bytes from `base`.
    package let count: Int
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int

    /// Maps `count` bytes (at least one), or nil when the system refuses (or the size overflows).
    package init?(count: Int) {
        guard count > 0 else { return nil }
        let huge = HugePageRegion.hugePage
        let wantsHuge = count >= huge
        let (length, overflow) = count.addingReportingOverflow(wantsHuge ? huge : 0)
        guard !overflow, let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              p != MAP_FAILED else { return nil }
        mapping = p
        mappedBytes = length
        let skip = wantsHuge ? (huge - Int(UInt(bitPattern: p) % UInt(huge))) % huge : 0
        base = p + skip
        self.count = count
        #if os(Linux)
        if wantsHuge { _ = madvise(base, count, MADV_HUGEPAGE) }
        #endif
    }

    deinit { munmap(mapping, mappedBytes) }
}
