import BLCore

/// One member of a zip archive as its central directory describes it.
struct ZipEntry {
    var name: String
    var method: UInt16
    var flags: UInt16
    var crc32: UInt32
    var compressedSize: Int
    var uncompressedSize: Int
    var localHeaderOffset: Int
}

/// The central directory of a zip archive read straight from mapped bytes, ZIP64 included.
/// Every offset and size is checked against the file before it is used.
struct ZipArchive {
    let bytes: UnsafeRawBufferPointer
    let entries: [ZipEntry]
    /// Entry index by name (a torch archive has one member per storage: tens of thousands).
    let byName: [String: Int]
    /// Where member data may lie: before the central directory.
    let dataLimit: Int

    static let eocdSignature: UInt32 = 0x0605_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    static let zip64EocdSignature: UInt32 = 0x0606_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let localSignature: UInt32 = 0x0403_4b50

    init(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes = bytes
        let n = bytes.count
        func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

        // End of central directory: 22 bytes plus a comment of at most 65535 bytes, at the end.
        guard n >= 22 else { throw BLError.format("zip archive too short (\(n) bytes) for an end-of-central-directory record") }
        var eocd = -1
        var at = n - 22
        let lowest = max(0, n - 22 - 65535)
        while at >= lowest {
            if bytes[at] == 0x50 && u32(at) == ZipArchive.eocdSignature && at + 22 + Int(u16(at + 20)) <= n {
                eocd = at
                break
            }
            at -= 1
        }
        guard eocd >= 0 else { throw BLError.format("no zip end-of-central-directory record (truncated archive?)") }

        var entryCount = Int(u16(eocd + 10))
        var cdSize = Int(u32(eocd + 12))
        var cdOffset = Int(u32(eocd + 16))
        var cdLimit = eocd
        if u16(eocd + 4) != 0 || u16(eocd + 6) != 0 {
            throw BLError(.unsupported, "multi-disk zip archives are not supported", location: "at byte \(eocd)")
        }

        // ZIP64: a locator just before the end record points at the zip64 end record.
        if eocd >= 20 && u32(eocd - 20) == ZipArchive.zip64LocatorSignature {
            let loc = eocd - 20
            let z = u64(loc + 8)
            guard z <= UInt64(loc), Int(z) + 56 <= loc else {
                throw BLError.format("zip64 end-of-central-directory offset \(z) is outside the archive", offset: loc)
            }
            let z64 = Int(z)
            guard u32(z64) == ZipArchive.zip64EocdSignature else {
                throw BLError.format("no zip64 end-of-central-directory record where the locator points", offset: z64)
            }
            let count64 = u64(z64 + 32)
            let size64 = u64(z64 + 40)
            let off64 = u64(z64 + 48)
            guard count64 <= UInt64(n), size64 <= UInt64(n), off64 <= UInt64(n) else {
                throw BLError.format("zip64 central directory fields exceed the archive size", offset: z64)
            }
            entryCount = Int(count64)
            cdSize = Int(size64)
            cdOffset = Int(off64)
            cdLimit = z64
        } else if entryCount == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            throw BLError.format("zip end record asks for zip64 but there is no zip64 locator", offset: eocd)
        }

        guard cdOffset <= cdLimit, cdSize <= cdLimit - cdOffset else {
            throw BLError.format("central directory (offset \(cdOffset), \(cdSize) bytes) lies outside the archive", offset: eocd)
        }
        guard entryCount <= cdSize / 46 else {
            throw BLError.format("zip claims \(entryCount) entries but its central directory has only \(cdSize) bytes", offset: eocd)
        }
        dataLimit = cdOffset

        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[cdOffset..<(cdOffset + cdSize)]), context: "zip central directory")
        var list: [ZipEntry] = []
        list.reserveCapacity(entryCount)
        for i in 0..<entryCount {
            let start = cdOffset + r.offset
            guard try r.u32() == ZipArchive.centralSignature else {
                throw BLError.format("central directory entry \(i) has a bad signature", offset: start)
            }
            try r.skip(4)                   // versions made by / needed
            let flags = try r.u16()
            let method = try r.u16()
            try r.skip(4)                   // time, date
            let crc = try r.u32()
            let comp32 = try r.u32()
            let uncomp32 = try r.u32()
            let nameLen = Int(try r.u16())
            let extraLen = Int(try r.u16())
            let commentLen = Int(try r.u16())
            let disk16 = try r.u16()
            try r.skip(6)                   // internal and external attributes
            let local32 = try r.u32()
            let nameBytes = try r.slice(nameLen, "entry name")
            let extra = try r.slice(extraLen, "entry extra field")
            try r.skip(commentLen)

            var comp = UInt64(comp32), uncomp = UInt64(uncomp32), local = UInt64(local32)
            var disk = UInt32(disk16)
            // ZIP64 extended information: only the fields whose 32-bit value is saturated, in order.
            var x = ByteReader(extra, context: "zip64 extra field of entry \(i)")
            while x.remaining >= 4 {
                let id = try x.u16()
                let size = Int(try x.u16())
                var f = ByteReader(try x.slice(size, "extra field"), context: "zip64 extra field of entry \(i)")
                if id == 0x0001 {
                    if uncomp32 == 0xffff_ffff { uncomp = try f.u64() }
                    if comp32 == 0xffff_ffff { comp = try f.u64() }
                    if local32 == 0xffff_ffff { local = try f.u64() }
                    if disk16 == 0xffff { disk = try f.u32() }
                }
            }
            guard disk == 0 else {
                throw BLError(.unsupported, "zip entry \(i) lies on another disk", location: "at byte \(start)")
            }
            guard comp <= UInt64(n), local <= UInt64(n), uncomp <= UInt64(Int.max / 2) else {
                throw BLError.format("zip entry \(i) has sizes or offsets beyond the archive (compressed \(comp), offset \(local))", offset: start)
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            list.append(ZipEntry(name: name, method: method, flags: flags, crc32: crc,
                                 compressedSize: Int(comp), uncompressedSize: Int(uncomp), localHeaderOffset: Int(local)))
        }
        // Two members of one name are ambiguous: readers disagree on which one counts (torch.load
        // takes the last, a first-match scan the first), so such an archive is refused.
        var index = [String: Int](minimumCapacity: list.count)
        for (i, e) in list.enumerated() {
            if let first = index.updateValue(i, forKey: e.name) {
                throw BLError.format("zip archive holds two members named '\(e.name)' (entries \(first) and \(i)): ambiguous, other readers would take the other one",
                                     offset: list[i].localHeaderOffset)
            }
        }
        entries = list
        byName = index
    }

    func entry(named name: String) -> ZipEntry? {
        byName[name].map { entries[$0] }
    }

    /// Byte range of a member's (possibly compressed) data, after checking its local header.
    func dataRange(_ e: ZipEntry) throws -> Range<Int> {
        let off = e.localHeaderOffset
        let n = bytes.count
        guard off <= dataLimit - 30 else {
            throw BLError.format("local header of '\(e.name)' at \(off) lies outside the member area", offset: off)
        }
        var r = ByteReader(bytes, offset: off, context: "local header of '\(e.name)'")
        guard try r.u32() == ZipArchive.localSignature else {
            throw BLError.format("bad local header signature for '\(e.name)'", offset: off)
        }
        try r.skip(22)
        let nameLen = Int(try r.u16())
        let extraLen = Int(try r.u16())
        let localName = try r.slice(nameLen, "local name")
        guard localName.elementsEqual(e.name.utf8) else {
            throw BLError.format("local header name differs from the central directory's '\(e.name)'", offset: off)
        }
        try r.skip(extraLen)
        let start = r.offset
        guard start <= n, e.compressedSize <= dataLimit - start else {
            throw BLError.format("data of '\(e.name)' (\(e.compressedSize) bytes at \(start)) runs past the member area", offset: off)
        }
        return start..<(start + e.compressedSize)
    }
}
