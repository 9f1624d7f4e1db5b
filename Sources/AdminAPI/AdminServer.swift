import Hummingbird
import Mustache
import Prometheus

/// Placeholder replaced below.
enum AdminPlaceholder {}
