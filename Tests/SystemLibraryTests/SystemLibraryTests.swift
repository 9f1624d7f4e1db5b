import CCurl
import CLDNS
import CMaxMindDB
import Testing

/// The three system libraries build, link and answer through their shims.
@Suite("System libraries")
struct SystemLibraryTests {
    @Test func ldnsParsesARecord() {
        var rr: UnsafeMutablePointer<ldns_rr>? = nil
        #expect(ldns_rr_new_frm_str(&rr, "www.example. 60 IN A 192.0.2.1", 0, nil, nil) == LDNS_STATUS_OK)
        #expect(ldns_rr_get_type(rr) == LDNS_RR_TYPE_A)
        ldns_rr_free(rr)
        #expect(!String(cString: meridian_ldns_version()).isEmpty)
    }

    @Test func maxmindReportsMissingFile() {
        var mmdb = MMDB_s()
        let status = MMDB_open("/nonexistent.mmdb", UInt32(MMDB_MODE_MMAP), &mmdb)
        #expect(status == MMDB_FILE_OPEN_ERROR)
        #expect(String(cString: meridian_mmdb_version()).hasPrefix("1."))
    }

    @Test func curlTypedSetoptWrappers() {
        let h = curl_easy_init()
        #expect(h != nil)
        #expect(meridian_curl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, 500) == CURLE_OK)
        #expect("http://127.0.0.1/".withCString { meridian_curl_easy_setopt_ptr(h, CURLOPT_URL, $0) } == CURLE_OK)
        curl_easy_cleanup(h)
        let m = curl_multi_init()
        #expect(meridian_curl_multi_setopt_long(m, CURLMOPT_MAXCONNECTS, 16) == CURLM_OK)
        curl_multi_cleanup(m)
        #expect(String(cString: meridian_curl_version()).contains("libcurl"))
    }
}
