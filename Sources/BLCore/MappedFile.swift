/// A whole file mapped read-only into memory. Tensors read from it point into the mapping,
/// so opening a 100 MB checkpoint costs page-table entries, not 100 MB of copies.
package final class MappedFile: @unchecked Sendable {
    package let path: String
    package let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    package init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            throw BLError(.io, "cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw BLError(.io, "cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw BLError(.io, "is a directory, expected a file", file: path)
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

    package var count: Int { bytes.count }

    /// A storage over a byte range of this file (no copy).
    package func storage(_ range: Range<Int>) -> ByteStorage {
        ByteStorage(slice: UnsafeRawBufferPointer(rebasing: bytes[range]), owner: self)
    }

    deinit {
        if mapped, let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// An immutable run of bytes that a tensor's elements live in: a slice of a mapped file,
/// or memory it owns (inflated zip members, HDF5 reads, conversions).
package final class ByteStorage: @unchecked Sendable {
    package let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?
    private let owned: UnsafeMutableRawPointer?

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

    deinit { owned?.deallocate() }
}
