import BLCore

/// The best classes of one clip.
public struct Prediction: Sendable, Equatable {
    /// A class with its score.
    public struct RankedClass: Sendable, Equatable {
        /// The class index (the row of the classifier).
        public let index: Int
        /// Softmax probability, computed in float64.
        public let probability: Double
        /// The raw logit.
        public let logit: Float
        /// The class name, when labels were given.
        public let label: String?
    }

    /// The best classes, best first.
    public let classes: [RankedClass]
    /// Softmax probabilities of every class.
    public let probabilities: [Double]
    /// The 1-based numbers of the frames used, for predictions made from frames.
    public internal(set) var frameNumbers: [Int]?

    package init(logits: Logits, sample: Int, top: Int, labels: [String]?) {
        let row = logits[sample]
        let probs = logits.probabilities(sample: sample)
        classes = logits.top(top, sample: sample).map { c in
            RankedClass(index: c, probability: probs[c], logit: row[row.startIndex + c], label: labels?[c])
        }
        probabilities = probs
        frameNumbers = nil
    }
}
