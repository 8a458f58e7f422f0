// emgtool CSV v1 reference sketch: stream N analog channels at a fixed rate.
//
// Protocol: firmware_notes/csv-v1.md.  Record with
//   emgtool record --port <PORT> --protocol csv --baud 921600 --out DIR
//
// Sampling runs on absolute micros() deadlines (next += period), so the rate
// never drifts; t_us in every line shows the real jitter.  If the serial line
// cannot keep up (baud too low, see the arithmetic in csv-v1.md), the loop
// falls behind, skips the missed sample times and advances the counter by
// the same amount: the host then records an honest gap (NaN) instead of
// silently stretching time.
//
// Boards: AVR (Uno/Nano: 10-bit, 5 V), ESP32 (12-bit, ~3.3 V), RP2040 and
// other native-USB boards (baud ignored, fast).  Adjust the configuration.

#include <Arduino.h>

// ---------------------------------------------------------------- configuration
const uint8_t N_CH = 2;
const uint8_t PINS[N_CH] = {A0, A1};
const uint32_t FS_HZ = 1000;              // >= 1000 for fasciculation waveforms
const uint32_t BAUD = 921600;             // 2 ch @ 1 kHz needs >= 460800 (csv-v1.md)
const char LABELS[] = "Biceps_L,Biceps_R"; // one per channel, '_' for spaces
const float GAIN = 1.0;                    // analog gain electrodes -> ADC pin (calibrate!)
#if defined(ARDUINO_ARCH_ESP32)
const float VREF = 3.3;
const uint8_t BITS = 12;
#elif defined(ARDUINO_ARCH_RP2040)
const float VREF = 3.3;
const uint8_t BITS = 12;
#else
const float VREF = 5.0;
const uint8_t BITS = 10;
#endif

// ---------------------------------------------------------------- state
const uint32_t PERIOD_US = 1000000UL / FS_HZ;
bool streaming = true;  // stream from boot; 'b' / 's' start and stop
uint32_t counter = 0;
uint32_t next_us = 0;
char line[16 + 12 + N_CH * 7];

void printHeader() {
  Serial.print(F("# emgtool-csv v1 fs="));
  Serial.print(FS_HZ);
  Serial.print(F(" ch="));
  Serial.print(N_CH);
  Serial.print(F(" units=adc_counts vref="));
  Serial.print(VREF, 2);
  Serial.print(F(" bits="));
  Serial.print(BITS);
  Serial.print(F(" gain="));
  Serial.print(GAIN, 1);
  Serial.print(F(" labels="));
  Serial.println(LABELS);
}

// Decimal digits of v at p; returns the length.  Faster than Serial.print per
// field and lets the whole line go out in one write.
uint8_t putU32(char *p, uint32_t v) {
  char tmp[10];
  uint8_t n = 0;
  do {
    tmp[n++] = '0' + (v % 10);
    v /= 10;
  } while (v);
  for (uint8_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
  return n;
}

void setup() {
  Serial.begin(BAUD);
#if defined(ARDUINO_ARCH_ESP32) || defined(ARDUINO_ARCH_RP2040)
  analogReadResolution(BITS);
#endif
  delay(200);
  printHeader();
  next_us = micros();
}

void loop() {
  while (Serial.available() > 0) {
    char c = Serial.read();
    if (c == 'v') printHeader();
    else if (c == 'b') { streaming = true; next_us = micros(); }
    else if (c == 's') streaming = false;
  }
  if (!streaming) return;

  uint32_t now = micros();
  if ((int32_t)(now - next_us) < 0) return;  // not time yet
  // Fell behind by whole periods (serial too slow)?  Skip them, count them.
  uint32_t late = (now - next_us) / PERIOD_US;
  if (late) {
    counter += late;
    next_us += late * PERIOD_US;
  }
  next_us += PERIOD_US;

  uint8_t n = putU32(line, counter++);
  line[n++] = ',';
  n += putU32(line + n, now);
  for (uint8_t i = 0; i < N_CH; i++) {
    line[n++] = ',';
    n += putU32(line + n, (uint32_t)analogRead(PINS[i]));
  }
  line[n++] = '\n';
  Serial.write((const uint8_t *)line, n);
}
