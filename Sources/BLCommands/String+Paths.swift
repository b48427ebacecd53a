extension String {
    /// The last component of a path ("" stays "").
    var lastPathComponent: String {
        split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? self
    }
}
