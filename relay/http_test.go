package relay

import (
	"crypto/tls"
	"net/http"
)

type httpTransport struct {
	tlsConf *tls.Config
	tr      *http.Transport
}

func (h *httpTransport) client() *http.Client {
	h.tr = &http.Transport{TLSClientConfig: h.tlsConf}
	return &http.Client{Transport: h.tr}
}

func (h *httpTransport) close() { h.tr.CloseIdleConnections() }
