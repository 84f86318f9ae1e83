"""The fleet-telemetry wire format: our frames decode in our gateway and in tescmd's receiver."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime

import pytest
from tescmd.telemetry import TelemetryDecoder
from tescmd.telemetry.flatbuf import parse_envelope
from tescmd.telemetry.protos import vehicle_alert_pb2 as tescmd_alert_pb2
from tesla_protocol.telemetry import vehicle_data_pb2

from flotta.telemetry.emitter import TelemetryRecord, TelemetryValue
from flotta.telemetry.envelope import (
    MAX_MESSAGE_BYTES,
    Envelope,
    WireError,
    ack_envelope,
    decode_envelope,
    decode_envelope_table,
    encode_envelope,
    scan_record,
    stream_envelope,
)
from flotta.telemetry.wire import (
    Alert,
    ErrorReport,
    data_values,
    decode_record,
    decode_stream,
    encode_alerts,
    encode_connectivity,
    encode_data,
    encode_errors,
    signal_count,
)

VIN = "5YJ3E1EA7KF000001"
T = 1_767_268_800.25  # 2026-01-01T12:00:00.25Z

VALUES: dict[str, TelemetryValue] = {
    "VehicleSpeed": 34.797,
    "Location": (37.412374, -122.145867),
    "Gear": "ShiftStateD",
    "Locked": True,
    "ChargeAmps": 16,
    "Odometer": None,
    "DetailedChargeState": "DetailedChargeStateCharging",  # 179: always typed
    "VehicleName": "Red Rocket",
}


def record(seq: int = 7, *, is_resend: bool = False) -> TelemetryRecord:
    return TelemetryRecord(seq=seq, created_at_s=T, data=VALUES, is_resend=is_resend)


def test_typed_record_round_trips_through_our_decoder() -> None:
    frame = encode_data(record(is_resend=True), vin=VIN, prefer_typed=True)
    decoded = decode_record(frame)

    assert (decoded.topic, decoded.txid, decoded.vin) == ("V", b"7", VIN)
    assert decoded.envelope.sender_id == f"vehicle_device.{VIN}"
    assert decoded.envelope.device_id == VIN
    assert decoded.envelope.created_at == int(T)
    assert decoded.message.is_resend is True
    assert decoded.message.created_at.ToDatetime(tzinfo=UTC) == datetime.fromtimestamp(T, UTC)
    assert data_values(decoded.message) == VALUES
    assert signal_count(decoded) == len(VALUES)


def test_untyped_record_sends_strings_below_field_179() -> None:
    decoded = decode_record(encode_data(record(), vin=VIN, prefer_typed=False), normalise=False)
    assert data_values(decoded.message) == {
        "VehicleSpeed": "34.797",
        "Location": "(37.412374 N, 122.145867 W)",
        "Gear": "ShiftStateD",
        "Locked": "true",
        "ChargeAmps": "16",
        "Odometer": None,
        "DetailedChargeState": "DetailedChargeStateCharging",
        "VehicleName": "Red Rocket",
    }
    kinds = {d.key: d.value.WhichOneof("value") for d in decoded.message.data}
    assert kinds[vehicle_data_pb2.DetailedChargeState] == "detailed_charge_state_value"


def test_ingest_normalises_like_the_reference_server() -> None:
    decoded = decode_record(encode_data(record(), vin=VIN, prefer_typed=False))
    assert data_values(decoded.message)["Location"] == (37.412374, -122.145867)

    tiny = TelemetryRecord(seq=1, created_at_s=T, data={"PackCurrent": 1e-05})
    assert data_values(decode_record(encode_data(tiny, vin=VIN, prefer_typed=False)).message) == {
        "PackCurrent": "0.00001"  # never scientific notation on our side
    }
    payload = vehicle_data_pb2.Payload(vin=VIN)
    payload.data.add(key=vehicle_data_pb2.PackCurrent).value.string_value = "1.5e-3"
    frame = stream_envelope("V", payload.SerializeToString(), vin=VIN, created_at_s=T, txid=b"x")
    assert data_values(decode_record(frame).message) == {"PackCurrent": "0.00150"}


@pytest.mark.parametrize("prefer_typed", [True, False])
def test_tescmd_decoder_reads_our_frames(prefer_typed: bool) -> None:
    frame = TelemetryDecoder().decode(encode_data(record(), vin=VIN, prefer_typed=prefer_typed))

    assert frame.vin == VIN and frame.topic == "V" and frame.is_resend is False
    assert frame.created_at == datetime.fromtimestamp(T, UTC)
    seen = {d.field_name: d.value for d in frame.data}
    assert list(seen) == list(VALUES)
    assert seen["DetailedChargeState"] == "DetailedChargeStateCharging"
    assert seen["Odometer"] is None
    if prefer_typed:
        assert seen["VehicleSpeed"] == pytest.approx(34.797)
        assert seen["Location"] == {"latitude": 37.412374, "longitude": -122.145867}
        assert (seen["Gear"], seen["Locked"], seen["ChargeAmps"]) == ("ShiftStateD", True, 16)
    else:
        assert (seen["VehicleSpeed"], seen["Locked"], seen["ChargeAmps"]) == (
            "34.797",
            "true",
            "16",
        )


def test_tescmd_reads_resends_and_alert_envelopes() -> None:
    resend = TelemetryDecoder().decode(
        encode_data(record(3, is_resend=True), vin=VIN, prefer_typed=True)
    )
    assert resend.is_resend is True

    alerts = [Alert("BMS_a066_w_low_soc", T - 60, ("Customer", "Service"))]
    raw = parse_envelope(encode_alerts(alerts, vin=VIN, created_at_s=T, txid=b"a1"))
    assert (raw.topic, raw.device_id, raw.txid, raw.created_at) == (
        b"alerts",
        VIN.encode(),
        b"a1",
        int(T),
    )
    message = tescmd_alert_pb2.VehicleAlerts.FromString(raw.payload)
    assert message.vin == VIN
    assert [(a.name, list(a.audiences)) for a in message.alerts] == [("BMS_a066_w_low_soc", [1, 2])]


def test_alerts_errors_and_connectivity_round_trip_and_count_signals() -> None:
    alerts = [Alert("A", T - 5), Alert("B", T - 9, ("ServiceFix",), ended_at_s=T - 1)]
    decoded = decode_record(encode_alerts(alerts, vin=VIN, created_at_s=T, txid=b"1"))
    assert [a.name for a in decoded.message.alerts] == ["A", "B"]
    assert not decoded.message.alerts[0].HasField("ended_at")
    assert decoded.message.alerts[1].ended_at.seconds == int(T - 1)
    assert signal_count(decoded) == 2

    errors = [ErrorReport("cert_error", T, body="bad certificate", tags={"host": "h"})]
    decoded = decode_record(encode_errors(errors, vin=VIN, created_at_s=T, txid=b"2"))
    assert decoded.topic == "errors" and decoded.vin == VIN
    error = decoded.message.errors[0]
    assert (error.name, error.body, dict(error.tags)) == (
        "cert_error",
        "bad certificate",
        {"host": "h"},
    )
    assert signal_count(decoded) == 0

    frame = encode_connectivity(
        "DISCONNECTED",
        vin=VIN,
        connection_id="c-1",
        created_at_s=T,
        txid=b"3",
        network_interface="wifi",
    )
    decoded = decode_record(frame)
    assert decoded.topic == "connectivity"
    assert (decoded.message.status, decoded.message.network_interface) == (2, "wifi")
    assert signal_count(decoded) == 0


def test_ack_echoes_txid_and_topic_and_carries_no_signals() -> None:
    decoded = decode_record(ack_envelope(b"7", "V"))
    assert decoded.envelope.is_ack and (decoded.txid, decoded.topic) == (b"7", "V")
    assert decoded.message is None and signal_count(decoded) == 0


def test_envelope_fields_survive_a_round_trip() -> None:
    envelope = Envelope(
        topic="V",
        txid=b"\x00\x01txid",
        message_id=b"mid",
        created_at=1_767_268_800,
        sender_id="vehicle_device.X",
        device_type="vehicle_device",
        device_id="X",
        payload=b"\x08\x01" * 100,
        delivered_at_epoch_ms=1_767_268_800_123,
    )
    assert decode_envelope(encode_envelope(envelope)) == envelope


def test_garbage_truncated_and_oversized_frames_are_wire_errors() -> None:
    frame = encode_data(record(), vin=VIN, prefer_typed=True)
    for cut in range(len(frame)):
        with pytest.raises(WireError):
            decode_record(frame[:cut])
    with pytest.raises(WireError, match="exceeds"):
        decode_envelope(b"\x00" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(WireError):
        decode_record(b"\xff" * 64)
    bad_payload = stream_envelope("V", b"\xff\xff\xff", vin=VIN, created_at_s=T, txid=b"z")
    with pytest.raises(WireError, match="payload"):
        decode_record(bad_payload)


def test_unknown_topics_pass_through_and_unknown_fields_are_refused() -> None:
    decoded = decode_record(stream_envelope("metrics", b"\x01", vin=VIN, created_at_s=T, txid=b"m"))
    assert decoded.message is None and decoded.envelope.payload == b"\x01"
    bogus = TelemetryRecord(seq=1, created_at_s=T, data={"NotAField": 1})
    with pytest.raises(ValueError, match="NotAField"):
        encode_data(bogus, vin=VIN, prefer_typed=True)


def test_large_integers_use_the_64_bit_member() -> None:
    big = TelemetryRecord(seq=1, created_at_s=T, data={"Odometer": 2**40})
    datum = decode_record(encode_data(big, vin=VIN, prefer_typed=True)).message.data[0]
    assert datum.value.WhichOneof("value") == "long_value" and datum.value.long_value == 2**40


def test_structured_values_from_other_senders_decode_to_plain_values() -> None:
    payload = vehicle_data_pb2.Payload(vin=VIN)
    payload.data.add(key=vehicle_data_pb2.DoorState).value.door_value.TrunkRear = True
    time_value = payload.data.add(key=vehicle_data_pb2.ScheduledChargingStartTime).value.time_value
    time_value.hour, time_value.minute = 23, 5
    payload.data.add(key=vehicle_data_pb2.Location).value.string_value = "(33.9 S, 18.4 E)"
    frame = stream_envelope("V", payload.SerializeToString(), vin=VIN, created_at_s=T, txid=b"d")

    values = data_values(decode_record(frame).message)
    doors = values["DoorState"]
    assert isinstance(doors, dict) and doors["TrunkRear"] and not doors["DriverFront"]
    assert values["ScheduledChargingStartTime"] == "23:05:00"
    assert values["Location"] == (-33.9, 18.4)


def random_envelope(rng: random.Random) -> Envelope:
    """A valid envelope with random field values, empty fields and acks included."""

    def blob(most: int) -> bytes:
        return rng.randbytes(rng.choice((0, 1, rng.randint(0, most))))

    def text(most: int) -> str:
        return "".join(rng.choice("aZ09._~é") for _ in range(rng.choice((0, rng.randint(1, most)))))

    if rng.random() < 0.2:
        return Envelope(topic=text(12), txid=blob(40), message_type=5, message_id=blob(16))
    return Envelope(
        topic=text(12),
        txid=blob(40),
        message_id=blob(16),
        created_at=rng.choice((0, rng.randrange(2**32))),
        sender_id=text(40),
        device_type=text(20),
        device_id=text(17),
        payload=blob(2_000),
        delivered_at_epoch_ms=rng.choice((0, rng.randrange(2**64))),
    )


def test_direct_reader_agrees_with_the_flatbuffers_runtime_on_valid_envelopes() -> None:
    rng = random.Random(5)
    for _ in range(2_000):
        envelope = random_envelope(rng)
        frame = encode_envelope(envelope)
        assert decode_envelope(frame) == decode_envelope_table(frame) == envelope


def test_direct_reader_refuses_corrupt_envelopes_with_wire_errors_only() -> None:
    rng = random.Random(9)
    accepted = 0
    for _ in range(3_000):
        frame = bytearray(encode_envelope(random_envelope(rng)))
        for _ in range(rng.randint(1, 4)):  # flip bytes, mostly in the offsets and vtables
            frame[rng.randrange(min(len(frame), 64))] = rng.randrange(256)
        if rng.random() < 0.3:
            frame = frame[: rng.randrange(len(frame) + 1)]
        try:
            fast = decode_envelope(bytes(frame))
        except WireError:
            continue  # refused: the runtime may be laxer (it reads negative offsets from the end)
        accepted += 1
        # Whatever the direct reader accepts, the runtime reads the same way.
        assert decode_envelope_table(bytes(frame)) == fast
    assert 0 < accepted < 3_000


def test_direct_reader_refuses_offsets_outside_the_frame() -> None:
    frame = bytearray(encode_envelope(Envelope(topic="V", txid=b"1", payload=b"abc")))
    root = int.from_bytes(frame[:4], "little")
    before_start = bytearray(frame)
    before_start[root : root + 4] = (root + 1).to_bytes(4, "little", signed=True)
    past_end = bytearray(frame)
    past_end[:4] = (len(frame) + 8).to_bytes(4, "little")
    for bad in (before_start, past_end):
        with pytest.raises(WireError, match=r"malformed|before the start|past the end"):
            decode_envelope(bytes(bad))


def test_ingest_reads_what_the_full_decoder_reads() -> None:
    rng = random.Random(11)
    frames = [encode_data(record(seq), vin=VIN, prefer_typed=typed) for seq, typed in
              ((1, True), (2, False), (3, True))]  # fmt: skip
    frames.append(encode_alerts([Alert("A", T), Alert("B", T)], vin=VIN, created_at_s=T, txid=b"a"))
    frames.append(encode_errors([ErrorReport("e", T)], vin=VIN, created_at_s=T, txid=b"e"))
    payload = vehicle_data_pb2.Payload(vin=VIN, is_resend=True)
    for text in ("1.5e-3", "2E+7", "(37.4 N, 122.1 W)", "\u0661.\u0665e3", "plain", "1.5"):
        datum = payload.data.add(key=rng.choice([vehicle_data_pb2.Location, vehicle_data_pb2.Soc]))
        datum.value.string_value = text
    frames.append(stream_envelope("V", payload.SerializeToString(), vin=VIN, created_at_s=T,
                                  txid=b"tx-\xff"))  # fmt: skip
    for frame in frames:
        full = decode_record(frame)
        assert decode_stream(frame) == (
            full.topic,
            full.txid,
            full.payload,
            signal_count(full),
            bool(getattr(full.message, "is_resend", False)),
        )


def test_the_rewrite_check_never_skips_a_text_the_reference_server_rewrites() -> None:
    rng = random.Random(3)
    alphabet = "0123456789.eE+-( )NSWE,\u0661\u0665\u2003ab"
    for _ in range(3_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        payload = vehicle_data_pb2.Payload(vin=VIN)
        key = rng.choice([vehicle_data_pb2.Location, vehicle_data_pb2.PackCurrent])
        payload.data.add(key=key).value.string_value = text
        frame = stream_envelope("V", payload.SerializeToString(), vin=VIN, created_at_s=T,
                                txid=b"t")  # fmt: skip
        assert decode_stream(frame)[2] == decode_record(frame).payload, text


def test_ingest_refuses_acks_unknown_topics_and_unusable_txids() -> None:
    good = encode_data(record(), vin=VIN, prefer_typed=True)
    assert decode_stream(good)[1] == b"7"
    refused = {
        "ack": ack_envelope(b"7", "V"),
        "metrics": stream_envelope("metrics", b"\x01", vin=VIN, created_at_s=T, txid=b"m"),
        "no txid": stream_envelope("V", b"", vin=VIN, created_at_s=T, txid=b""),
        "long txid": stream_envelope("V", b"", vin=VIN, created_at_s=T, txid=b"x" * 65),
        "newline": stream_envelope("V", b"", vin=VIN, created_at_s=T, txid=b"a\nb"),
        "nul": stream_envelope("V", b"", vin=VIN, created_at_s=T, txid=b"a\x00b"),
        "bad payload": stream_envelope("V", b"\xff\xff", vin=VIN, created_at_s=T, txid=b"z"),
    }
    for why, frame in refused.items():
        with pytest.raises(WireError):
            decode_stream(frame)
            pytest.fail(f"{why} was accepted")
    assert decode_stream(stream_envelope("V", b"", vin=VIN, created_at_s=T, txid=b"x" * 64))


def test_the_ingest_reader_agrees_with_the_full_reader_and_refuses_corrupt_frames() -> None:
    rng = random.Random(13)
    compared = 0
    for _ in range(3_000):
        envelope = random_envelope(rng)
        frame = encode_envelope(envelope)
        fields = (envelope.message_type, envelope.topic.encode(), envelope.txid, envelope.payload)
        assert scan_record(frame) == fields
        corrupt = bytearray(frame)
        for _ in range(rng.randint(1, 4)):
            corrupt[rng.randrange(min(len(corrupt), 64))] = rng.randrange(256)
        cut = bytes(corrupt[: rng.randrange(len(corrupt) + 1)])
        try:
            full = decode_envelope(cut)
        except WireError:
            with contextlib.suppress(WireError):  # it reads less, so it may accept more
                scan_record(cut)
            continue
        compared += 1
        assert scan_record(cut) == (full.message_type, full.topic.encode(), full.txid, full.payload)
    assert compared > 0
