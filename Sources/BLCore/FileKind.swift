/// What a path names, following symbolic links (`stat`).
package enum FileKind: Equatable, Sendable {
    case regular
    case directory
    /// A FIFO, socket or device: reading one can block or never end.
    case special
    case missing

    package static func of(_ path: String) -> FileKind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        default: return .special
        }
    }

    /// What a non-regular file is, for messages: "a FIFO", "a socket", "a character device", ...
    package static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        default: return "a special file"
        }
    }
}
