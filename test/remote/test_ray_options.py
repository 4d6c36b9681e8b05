"""kairos-serve --ray's options, without starting Ray (serve/ray_serve.py)."""
import pytest

from kairos_ros.serve.ray_serve import RayOptions, deployment_options, ray_options


def test_autoscaling_bounds_become_the_deployment_options():
    fixed = deployment_options(RayOptions(max_batch_size=16, min_replicas=2, max_replicas=2, replica_cpus=0.5))
    assert fixed == {"max_ongoing_requests": 32, "ray_actor_options": {"num_cpus": 0.5}, "num_replicas": 2}
    scaled = deployment_options(RayOptions(max_batch_size=4, min_replicas=1, max_replicas=3, target_ongoing_requests=6))
    assert scaled["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 6}
    assert "num_replicas" not in scaled and scaled["max_ongoing_requests"] == 8


@pytest.mark.parametrize("kw, name", [({"max_batch_size": 0}, "max_batch_size"),
                                      ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
                                      ({"replica_cpus": 0}, "replica_cpus"), ({"timeout": -1}, "timeout")])
def test_bad_options_refused_by_name(kw, name):
    with pytest.raises(ValueError, match=f"Ray option {name} ="):
        RayOptions(**kw)


def test_command_line():
    from kairos_ros.serve.cli import main, parse_args

    args = parse_args(["--config", "config/aloha.yaml", "--ray", "--ray-max-batch-size", "8", "--ray-min-replicas", "1",
                       "--ray-max-replicas", "4", "--ray-batch-wait-ms", "50"])
    assert ray_options(args) == RayOptions(max_batch_size=8, batch_wait_ms=50.0, min_replicas=1, max_replicas=4)
    # refused before Ray starts: bounds, and a backend --ray does not serve
    assert main(["--config", "config/aloha.yaml", "--ray", "--ray-max-replicas", "0", "--insecure-no-auth"]) == 2
    assert main(["--config", "config/aloha.yaml", "--ray", "--backend", "hold", "--insecure-no-auth"]) == 2
