"""Chaos suite: faults and hostile input against real workers, a real broker and a real Milvus.

``python -m infra.chaos --seed 1 [--long] [--scenario kill,poison] [--json out.json]``. Each
scenario runs bounded in time on its own topics; an auditor then reads every topic and the
Milvus collection and checks the targets of issue 18 (nothing lost, no duplicate rows, no
confirmed label lost or downgraded, recovery within 15 s of a crash).
"""
