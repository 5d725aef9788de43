package testenv

import (
	"slices"
	"testing"
)

func TestRabbitMQCtl(t *testing.T) {
	t.Setenv("RABBITMQCTL", "docker exec 4f2a rabbitmqctl")
	if got, want := RabbitMQCtl("add_vhost", "v").Args, []string{"docker", "exec", "4f2a", "rabbitmqctl", "add_vhost", "v"}; !slices.Equal(got, want) {
		t.Errorf("with RABBITMQCTL: %q, want %q", got, want)
	}

	t.Setenv("RABBITMQCTL", "")
	t.Setenv("PATH", t.TempDir()) // no rabbitmqctl
	if got, want := RabbitMQCtl("status").Args, []string{"docker", "compose", "exec", "-T", "rabbitmq", "rabbitmqctl", "status"}; !slices.Equal(got, want) {
		t.Errorf("without rabbitmqctl on PATH: %q, want %q", got, want)
	}
}
