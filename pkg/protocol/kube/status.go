package kube

import (
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// refuse answers with a Status object, as the API server itself refuses,
// so that kubectl prints "Error from server (Forbidden): ...".
func refuse(w http.ResponseWriter, _ *http.Request, code int, reason string) {
	st := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  reason,
		Reason:   statusReason(code),
		Code:     int32(code),
	}
	b, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sluice-Refused", "1")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func statusReason(code int) metav1.StatusReason {
	switch code {
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonInternalError
}
