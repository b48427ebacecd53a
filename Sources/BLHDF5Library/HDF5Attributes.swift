import BLCore
import BLHDF5
import CHDF5

extension HDF5File {
    /// Most attribute elements read as a list; larger attributes are reported as skipped.
    static let maxAttributeElements = 65_536
    /// Longest fixed-length string element read.
    static let maxStringBytes = 1 << 20

    /// Appends the attributes of the object at `objectPath` (libhdf5 path, "." for the root).
    static func readAttributes(_ fid: hid_t, objectPath: String, dotted: String, count: Int,
                               into out: inout HDF5Contents) throws {
        let location = objectPath == "." ? "root group" : "object '\(objectPath)'"
        let oid = try HDF5Library.check(H5Oopen(fid, objectPath, blc_h5p_default()), "cannot open", location: location)
        defer { H5Oclose(oid) }
        let prefix = dotted.isEmpty ? "attr." : "attr.\(dotted)."
        // One pass over the attributes (H5Aiterate2), each opened by the name the iteration gives:
        // opening attribute i by its index in the name order costs a walk of the index each time,
        // quadratic in the count (20,000 attributes took 31 s).
        let names = try attributeNames(oid, expected: count, location: location)
        for raw in names {
            let name = prefix + raw
            let attrLocation = "attribute '\(name)'"
            let aid = try HDF5Library.check(H5Aopen(oid, raw, blc_h5p_default()), "cannot open attribute '\(raw)'", location: location)
            defer { H5Aclose(aid) }
            switch try attributeValue(aid, location: attrLocation) {
            case .value(let v): out.attributes.append((name, v))
            case .skipped(let reason): out.skipped.append((name, reason))
            }
        }
    }

    private final class Names {
        var names: [String] = []
        var bad = false
    }

    /// The attribute names of `oid` in name order, in one iteration.
    private static func attributeNames(_ oid: hid_t, expected: Int, location: String) throws -> [String] {
        let box = Names()
        box.names.reserveCapacity(min(expected, 1 << 20))
        let visitor: H5A_operator2_t = { _, name, _, data in
            guard let name, let data else { return -1 }
            let box = Unmanaged<Names>.fromOpaque(data).takeUnretainedValue()
            let n = strnlen(name, 65_536)
            if n >= 65_536 { box.bad = true; return -1 }
            box.names.append(String(decoding: UnsafeRawBufferPointer(start: name, count: n), as: UTF8.self))
            return 0
        }
        var index: hsize_t = 0
        let status = H5Aiterate2(oid, H5_INDEX_NAME, H5_ITER_INC, &index, visitor, Unmanaged.passUnretained(box).toOpaque())
        withExtendedLifetime(box) {}
        if box.bad { throw HDF5Library.failure("an attribute name is longer than 64 KiB", location: location) }
        try HDF5Library.check(status: status, "cannot list the attributes", location: location)
        return box.names
    }

    private enum AttributeResult {
        case value(Value)
        case skipped(String)
    }

    private static func attributeValue(_ aid: hid_t, location: String) throws -> AttributeResult {
        let sid = try HDF5Library.check(H5Aget_space(aid), "cannot read the dataspace", location: location)
        defer { H5Sclose(sid) }
        guard let shape = try spaceShape(sid, location: location) else { return .value(.none) }
        var count = 1
        for d in shape {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            if o || m > maxAttributeElements { return .skipped("attribute with more than \(maxAttributeElements) elements") }
            count = m
        }
        let tid = try HDF5Library.check(H5Aget_type(aid), "cannot read the datatype", location: location)
        defer { H5Tclose(tid) }

        let values: [Value]
        switch H5Tget_class(tid) {
        case H5T_INTEGER:
            if H5Tget_sign(tid) == H5T_SGN_NONE && H5Tget_size(tid) >= 8 {
                var raw = [UInt64](repeating: 0, count: count)
                try read(aid, blc_h5t_native_uint64(), &raw, location)
                values = raw.map { Int64(exactly: $0).map(Value.int) ?? .bigInt(String($0)) }
            } else {
                var raw = [Int64](repeating: 0, count: count)
                try read(aid, blc_h5t_native_int64(), &raw, location)
                values = raw.map(Value.int)
            }
        case H5T_FLOAT:
            var raw = [Double](repeating: 0, count: count)
            try read(aid, blc_h5t_native_double(), &raw, location)
            values = raw.map(Value.float)
        case H5T_ENUM where try isBoolEnum(tid, location: location):
            var raw = [Int8](repeating: 0, count: count)
            try read(aid, tid, &raw, location)
            values = raw.map { .bool($0 != 0) }
        case H5T_STRING:
            values = try readStrings(aid, tid, count: count, location: location).map(Value.string)
        default:
            return .skipped("attribute of a datatype that is neither numeric nor string")
        }
        return .value(shape.isEmpty ? (values.first ?? .none) : .list(values))
    }

    private static func read<T>(_ aid: hid_t, _ memType: hid_t, _ buffer: inout [T], _ location: String) throws {
        let status = buffer.withUnsafeMutableBytes { H5Aread(aid, memType, $0.baseAddress) }
        try HDF5Library.check(status: status, "cannot read the value", location: location)
    }

    private static func readStrings(_ aid: hid_t, _ tid: hid_t, count: Int, location: String) throws -> [String] {
        let variable = H5Tis_variable_str(tid)
        try HDF5Library.check(status: variable, "cannot read the string kind", location: location)
        let mem = try HDF5Library.check(H5Tcopy(blc_h5t_c_s1()), "cannot make a string type", location: location)
        defer { H5Tclose(mem) }
        _ = H5Tset_cset(mem, H5Tget_cset(tid))
        if variable > 0 {
            try HDF5Library.check(status: H5Tset_size(mem, blc_h5t_variable()), "cannot make a string type", location: location)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try read(aid, mem, &pointers, location)
            defer { for p in pointers where p != nil { H5free_memory(p) } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let size = H5Tget_size(tid)
        guard size > 0, size <= maxStringBytes else {
            return count == 0 ? [] : [String](repeating: "", count: count)
        }
        try HDF5Library.check(status: H5Tset_size(mem, size), "cannot make a string type", location: location)
        _ = H5Tset_strpad(mem, H5T_STR_NULLPAD)
        var raw = [UInt8](repeating: 0, count: size * count)
        try read(aid, mem, &raw, location)
        return (0..<count).map { i in
            let element = raw[(i * size)..<((i + 1) * size)]
            let end = element.firstIndex(of: 0) ?? element.endIndex
            return String(decoding: element[element.startIndex..<end], as: UTF8.self)
        }
    }
}
