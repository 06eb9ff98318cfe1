import pytest

pytestmark = pytest.mark.usefixtures("ray_cluster")


def test_warm_up_runs_on_a_live_cluster_and_leaves_ray_datas_actors_up():
    import ray

    from sislab.datasets.warm_up import start_warm_up, warm_up

    warm_up()  # raises where the Ray APIs it relies on have changed
    named = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    assert "datasets_stats_actor" in named  # created by Ray Data's first execution
    thread = start_warm_up()  # a sweep's: in the background, never raising
    assert thread.daemon
    thread.join(timeout=120)
    assert not thread.is_alive()
