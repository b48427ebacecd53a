/// A whole file mapped read-only into memory. Tensors read from it point into the mapping,
/// so opening a 100 MB checkpoint costs page-table entries, not 100 MB of copies.
package final class MappedFile: @unchecked Sendable {
    package let path: String
    package let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Maps the regular file at `path`. A FIFO, socket or device is refused without blocking: the
    /// file is opened with `O_NONBLOCK` (an `open` of a FIFO with no writer would wait forever)
    /// and its type checked on the open descriptor, so nothing can swap it in between.
    package init(path: String) throws {
        self.path = path
        let fd = try MappedFile.openRegular(path)
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw BLError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw BLError(.io, "cannot map file: \(String(cString: strerror(errno)))", file: path)
        }
        bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: size)
        mapped = true
    }

    /// A file's contents held in memory under a name (tests and fuzz targets): readers see it
    /// exactly as they would see the mapped file.
    package init(copying contents: UnsafeRawBufferPointer, path: String) {
        self.path = path
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(contents.count, 1), alignment: 64)
        if let src = contents.baseAddress { p.copyMemory(from: src, byteCount: contents.count) }
        bytes = UnsafeRawBufferPointer(start: p, count: contents.count)
        mapped = false
        copied = p
    }

    private var copied: UnsafeMutableRawPointer?

    package var count: Int { bytes.count }

    /// A read-only descriptor of the regular file at `path` (following symbolic links), opened
    /// without blocking; anything else is an error naming what it is.
    package static func openRegular(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 {
            throw BLError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let e = errno
            close(fd)
            throw BLError(.io, "cannot stat: \(String(cString: strerror(e)))", file: path)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            return fd
        case S_IFDIR:
            close(fd)
            throw BLError(.io, "is a directory, expected a file", file: path)
        default:
            close(fd)
            throw BLError(.io, "is \(FileKind.describe(st.st_mode)), not a regular file (reading it could block or never end)", file: path)
        }
    }

    /// A storage over a byte range of this file (no copy).
    package func storage(_ range: Range<Int>) -> ByteStorage {
        ByteStorage(slice: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: self)
    }

    deinit {
        if mapped, let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
        copied?.deallocate()
    }
}

/// An immutable run of bytes that a tensor's elements live in: a slice of a mapped file,
/// or memory it owns (inflated zip members, HDF5 reads, conversions).
package final class ByteStorage: @unchecked Sendable {
    package let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?
    private let owned: UnsafeMutableRawPointer?
    /// Bytes of an inaccessible reservation (`reserved(count:)`), unmapped on release.
    private var reservedCount = 0

    /// `count` bytes of address space that cannot be read (`PROT_NONE`, nothing committed): the
    /// storage of a tensor whose shape is wanted but whose data was deliberately not produced
    /// (`inspect` of a deflated member). Reading it is a bug, and faults rather than returning zeros.
    package static func reserved(count: Int) throws -> ByteStorage {
        guard count > 0 else { return ByteStorage(copying: []) }
        guard let p = mmap(nil, count, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED else {
            throw BLError(.io, "cannot reserve \(count) bytes of address space: \(String(cString: strerror(errno)))")
        }
        let s = ByteStorage(slice: UnsafeRawBufferPointer(start: p, count: count), owner: ReservationOwner())
        s.reservedCount = count
        return s
    }

    package init(slice: UnsafeRawBufferPointer, owner: AnyObject) {
        self.bytes = slice
        self.owner = owner
        self.owned = nil
    }

    /// Takes ownership of freshly allocated memory (allocated with `UnsafeMutableRawPointer.allocate`).
    package init(taking pointer: UnsafeMutableRawPointer, count: Int) {
        self.bytes = UnsafeRawBufferPointer(start: pointer, count: count)
        self.owner = nil
        self.owned = pointer
    }

    /// Allocates `count` bytes and lets `fill` write them.
    package static func allocate(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> ByteStorage {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: p, count: count))
        } catch {
            p.deallocate()
            throw error
        }
        return ByteStorage(taking: p, count: count)
    }

    package convenience init(copying array: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(array.count, 1), alignment: 64)
        array.withUnsafeBytes { src in
            if let b = src.baseAddress { p.copyMemory(from: b, byteCount: src.count) }
        }
        self.init(taking: p, count: array.count)
    }

    package var count: Int { bytes.count }

    /// False for a `reserved(count:)` placeholder, whose bytes must not be read.
    package var isReadable: Bool { reservedCount == 0 }

    deinit {
        owned?.deallocate()
        if reservedCount > 0, let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), reservedCount) }
    }
}

private final class ReservationOwner {}
