import BLCore
import CHDF5

/// The one door into libhdf5. The library is built without thread safety here, so every call
/// goes through `withLock`; its default error printing is switched off and its error stack is
/// turned into `BLError` text instead.
package enum HDF5Library {
    private static let lock = Locked(())

    /// Runs `body` holding the global libhdf5 lock, with automatic error printing silenced
    /// and the error stack cleared.
    package static func withLock<R>(_ body: () throws -> R) rethrows -> R {
        try lock.withLock { _ in
            _ = H5open()
            _ = H5Eset_auto2(blc_h5e_default(), nil, nil)
            _ = H5Eclear2(blc_h5e_default())
            return try body()
        }
    }

    private final class Messages {
        var lines: [String] = []
    }

    /// The current error stack as text, innermost cause last ("" when empty). Call with the lock held.
    package static func errorStackText() -> String { errorStackLines().joined(separator: "; ") }

    /// The current error stack, one entry a line, innermost cause last. Call with the lock held.
    static func errorStackLines() -> [String] {
        let box = Messages()
        let walker: H5E_walk2_t = { _, entry, data in
            guard let entry, let data else { return 0 }
            let box = Unmanaged<Messages>.fromOpaque(data).takeUnretainedValue()
            let e = entry.pointee
            var text = e.desc.map { String(cString: $0) } ?? ""
            var minor = [CChar](repeating: 0, count: 256)
            if H5Eget_msg(e.min_num, nil, &minor, minor.count) > 0 {
                let m = String(decoding: minor.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !m.isEmpty { text += text.isEmpty ? m : " (\(m))" }
            }
            if let f = e.func_name { text += " in \(String(cString: f))" }
            if !text.isEmpty { box.lines.append(text) }
            return 0
        }
        let data = Unmanaged.passUnretained(box).toOpaque()
        _ = H5Ewalk2(blc_h5e_default(), H5E_WALK_DOWNWARD, walker, data)
        _ = H5Eclear2(blc_h5e_default())
        withExtendedLifetime(box) {}
        return box.lines
    }

    /// A format error for a failed call: what was attempted plus libhdf5's own explanation.
    static func failure(_ what: String, location: String? = nil) -> BLError {
        // One line first (what failed and libhdf5's innermost cause), the whole stack after it.
        let stack = errorStackLines()
        guard let cause = stack.last else { return BLError(.format, what, location: location) }
        let details = stack.count > 1 ? "\n  libhdf5 error stack: " + stack.joined(separator: "; ") : ""
        return BLError(.format, "\(what): libhdf5: \(cause)\(details)", location: location)
    }

    /// Throws `failure(what)` when an identifier call failed, else returns the identifier.
    @discardableResult
    static func check(_ id: hid_t, _ what: @autoclosure () -> String, location: String? = nil) throws -> hid_t {
        if id < 0 { throw failure(what(), location: location) }
        return id
    }

    /// Throws when a status call failed (negative herr_t / htri_t).
    static func check(status: Int32, _ what: @autoclosure () -> String, location: String? = nil) throws {
        if status < 0 { throw failure(what(), location: location) }
    }
}
