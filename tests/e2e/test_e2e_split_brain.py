"""Freezing the VIP owner: split brain (both lbs hold the VIP); webstack.status must say so."""

from e2e_lab import wait_until


def test_freeze_owner_is_reported_as_split_brain(healthy):
    lab = healthy
    owner = lab.vip_owner()
    try:
        lab.run("freeze", owner)
        # The frozen node keeps its address (its kernel state is not frozen); the peer takes over.
        holders, seconds = wait_until(
            lambda: len(h := lab.vip_holders()) > 1 and h,
            15,
            interval=0.2,
            what="both lbs to hold the VIP",
        )
        print(f"{owner} frozen: {holders} hold the VIP after {seconds:.2f}s")
        code, output = lab.status()
        assert code != 0, output
        problem = next((line for line in output.splitlines() if "split brain:" in line), "")
        assert owner in problem and all(h in problem for h in holders), output
    finally:
        lab.run("thaw", owner)
    wait_until(lambda: len(lab.vip_holders()) == 1, 30, what="exactly one VIP holder after thaw")
    code, output = lab.status()
    assert code == 0, output
