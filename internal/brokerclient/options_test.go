package brokerclient

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"duochrome/internal/brokerapi"
)

func TestLaunchOptionsProto(t *testing.T) {
	tests := []struct {
		name string
		o    LaunchOptions
		want *brokerapi.BrowserOptions
	}{
		{name: "zero", o: LaunchOptions{}, want: nil},
		{
			name: "every field",
			o:    LaunchOptions{WindowWidth: 800, WindowHeight: 600, Lang: "de-DE", Timezone: "UTC", UserAgent: "ua"},
			want: &brokerapi.BrowserOptions{WindowWidth: 800, WindowHeight: 600, Lang: "de-DE", Timezone: "UTC", UserAgent: "ua"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.o.proto()
			if (got == nil) != (tt.want == nil) || got != nil && !proto.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
