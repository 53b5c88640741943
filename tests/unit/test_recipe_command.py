"""A manifest's command keeps what defines the model and drops where it was written."""

from __future__ import annotations

from model_store.training.command import recipe_command


def test_drops_locations_and_switches_but_keeps_the_recipe() -> None:
    argv = ["background", "--steps", "5000", "--registry", "runs/exp-reg", "--run-dir=runs/x", "--overwrite",
            "--generator", "textured_items", "--resume"]  # fmt: skip
    command = recipe_command(
        "model_store.quality.train", argv, ["--registry", "--run-dir"], ["--resume", "--overwrite"]
    )
    assert command == "python -m model_store.quality.train background --steps 5000 --generator textured_items"


def test_arguments_are_shell_quoted() -> None:
    assert recipe_command("m", ["--name", "a b"]) == "python -m m --name 'a b'"
